// A small router on the History API. The dashboard's routes are few and its state is in the query string, so
// this is all it needs: the current location as a hook, navigate(), and links that do not reload the page.
import { useEffect, useState } from "preact/hooks";

export interface Location {
  path: string;
  search: string;
}

const listeners = new Set<() => void>();

function current(): Location {
  return { path: window.location.pathname, search: window.location.search };
}

export function navigate(to: string, { replace = false } = {}): void {
  if (to === window.location.pathname + window.location.search) return;
  // A new page starts at the top; a replaced state (a list opened in place) keeps the reader where they are.
  if (replace) history.replaceState(null, "", to);
  else {
    history.pushState(null, "", to);
    window.scrollTo(0, 0);
  }
  listeners.forEach((listener) => listener());
}

export function useLocation(): Location {
  const [location, setLocation] = useState(current);
  useEffect(() => {
    const update = () => setLocation(current());
    listeners.add(update);
    window.addEventListener("popstate", update);
    update(); // a child's effect may have navigated before this one ran (effects run children first)
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return location;
}

/** An ordinary link (open in a new tab works) that navigates in place on a plain click. */
export function onLinkClick(event: MouseEvent): void {
  const anchor = event.currentTarget as HTMLAnchorElement;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  if (anchor.origin !== window.location.origin) return;
  event.preventDefault();
  navigate(anchor.pathname + anchor.search);
}

/** Match ``/funnels/:id/edit`` style patterns; the parameters, or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const names: string[] = [];
  const source = pattern.replace(/:(\w+)/g, (_, name: string) => {
    names.push(name);
    return "([^/]+)";
  });
  const found = new RegExp(`^${source}/?$`).exec(path);
  if (!found) return null;
  try {
    return Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(found[i + 1])]));
  } catch {
    return null; // a malformed escape (/sessions/%E0): no route, so the "not found" page
  }
}
