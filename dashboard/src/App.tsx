import { signOutStarted } from "./api";
import { match, onLinkClick, useLocation } from "./router";
import { SessionsPage } from "./pages/SessionsPage";
import { SessionPage } from "./pages/SessionPage";
import { FunnelsPage } from "./pages/FunnelsPage";
import { FunnelBuilderPage } from "./pages/FunnelBuilderPage";
import { FunnelResultsPage } from "./pages/FunnelResultsPage";
import { useEffect } from "preact/hooks";
import { navigate } from "./router";

function Page({ path, search }: { path: string; search: string }) {
  let params: Record<string, string> | null;
  if (path === "/" || path === "") {
    return <Redirect to="/sessions" />;
  }
  if (match("/sessions", path)) return <SessionsPage search={search} />;
  if ((params = match("/sessions/:id", path))) return <SessionPage key={params.id} id={params.id} search={search} />;
  if (match("/funnels", path)) return <FunnelsPage />;
  // Keys: a new funnel and each funnel's page are instances of their own, never a reused one's state.
  if (match("/funnels/new", path)) return <FunnelBuilderPage key="new" />;
  if ((params = match("/funnels/:id/edit", path))) return <FunnelBuilderPage key={`edit-${params.id}`} id={params.id} />;
  if ((params = match("/funnels/:id", path))) {
    return <FunnelResultsPage key={`results-${params.id}`} id={params.id} search={search} />;
  }
  return (
    <main>
      <h1>Not found</h1>
      <p>There is no page at <code>{path}</code>. <a href="/sessions" onClick={onLinkClick}>See the sessions</a>.</p>
    </main>
  );
}

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}

export function App() {
  const { path, search } = useLocation();
  const section = path.startsWith("/funnels") ? "funnels" : "sessions";
  return (
    <>
      <header class="top">
        <a class="brand" href="/sessions" onClick={onLinkClick}>Bard</a>
        <nav aria-label="Main">
          <a href="/sessions" onClick={onLinkClick} aria-current={section === "sessions" ? "page" : undefined}>
            Sessions
          </a>
          <a href="/funnels" onClick={onLinkClick} aria-current={section === "funnels" ? "page" : undefined}>
            Funnels
          </a>
        </nav>
        <form method="post" action="/logout" class="signout" onSubmit={signOutStarted}>
          <button type="submit" class="link">Sign out</button>
        </form>
      </header>
      <Page path={path} search={search} />
    </>
  );
}
