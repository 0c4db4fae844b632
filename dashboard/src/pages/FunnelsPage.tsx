import { useState } from "preact/hooks";
import { getJson, remove, type StoredFunnel } from "../api";
import { Empty, Failure, Loading, useLoad } from "../components";
import { formatInstant } from "../format";
import { onLinkClick } from "../router";

export function FunnelsPage() {
  const funnels = useLoad("funnels", (signal) => getJson<{ funnels: StoredFunnel[] }>("/v1/funnels", undefined, signal));
  const [confirming, setConfirming] = useState<number | null>(null);
  const [problem, setProblem] = useState<unknown>(null);
  const deleteFunnel = async (id: number) => {
    try {
      await remove(`/v1/funnels/${id}`);
      setConfirming(null);
      setProblem(null);
      funnels.reload();
    } catch (error) {
      setProblem(error);
    }
  };
  return (
    <main>
      <div class="title-row">
        <h1>Funnels</h1>
        <a class="button primary" href="/funnels/new" onClick={onLinkClick}>New funnel</a>
      </div>
      {problem ? <Failure error={problem} /> : null}
      {funnels.error ? <Failure error={funnels.error} retry={funnels.reload} />
        : !funnels.data ? <Loading what="funnels" />
        : funnels.data.funnels.length === 0 ? (
          <Empty><p>No funnels yet. A funnel counts the sessions that did a sequence of clicks and custom events,
            and shows who dropped out where. <a href="/funnels/new" onClick={onLinkClick}>Create one</a>.</p></Empty>
        ) : (
          <table class="funnels">
            <thead>
              <tr><th scope="col">Name</th><th scope="col" class="num">Steps</th><th scope="col">Created</th>
                <th scope="col">Last modified</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr>
            </thead>
            <tbody>
              {funnels.data.funnels.map((funnel) => (
                <tr key={funnel.id}>
                  <td><a href={`/funnels/${funnel.id}`} onClick={onLinkClick}>{funnel.name}</a></td>
                  <td class="num">{funnel.steps.length}</td>
                  <td>{formatInstant(funnel.created_at)}</td>
                  <td>{formatInstant(funnel.updated_at)}</td>
                  <td class="row-actions">
                    {confirming === funnel.id ? (
                      <span role="group" aria-label={`Confirm deleting ${funnel.name}`}>
                        Delete “{funnel.name}”?{" "}
                        <button type="button" class="danger" onClick={() => deleteFunnel(funnel.id)}>Yes, delete</button>{" "}
                        <button type="button" onClick={() => setConfirming(null)}>Cancel</button>
                      </span>
                    ) : (
                      <>
                        <a href={`/funnels/${funnel.id}/edit`} onClick={onLinkClick}
                          aria-label={`Edit ${funnel.name}`}>Edit</a>{" "}
                        <button type="button" class="link danger" aria-label={`Delete ${funnel.name}`}
                          onClick={() => setConfirming(funnel.id)}>Delete</button>
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
    </main>
  );
}
