import { useEffect, useState } from "react";
import { indexedDbOutboxStore, localStorageDedupStore, localStoragePositionStore } from "@truss/client";
import { TrussProvider } from "@truss/react";
import "./erp-events.js";
import { Notifications } from "./Notifications.js";
import { OnSite } from "./OnSite.js";
import { ProjectFeed } from "./ProjectFeed.js";
import { deviceId, loadAssignment, logIn, logOut, storedAssignment, storedSession, type Assignment, type Session } from "./session.js";
import { SyncBar } from "./SyncBar.js";
import { TodaysReport } from "./TodaysReport.js";

const DEMO_LOGINS = ["ben@northwind.test", "alice@northwind.test", "sam@northwind.test"];

/** Logged out: the login; logged in: the site, with one Truss client per user. */
export function App() {
  const [session, setSession] = useState(storedSession);
  if (!session) return <Login onSession={setSession} />;
  const { user, company } = session;
  return (
    <TrussProvider
      key={`${company.id}:${user.id}`}
      url={window.location.origin}
      options={{
        token: session.token,
        deviceId: deviceId(),
        // A phone reloads often: handled messages, stream positions and waiting edits all survive it.
        dedupStore: localStorageDedupStore(`site:inbox:${company.id}:${user.id}`),
        positionStore: localStoragePositionStore(`site:streams:${company.id}:${user.id}`),
        outbox: { store: indexedDbOutboxStore(`site-outbox:${company.id}:${user.id}`) },
      }}
    >
      <Site
        session={session}
        onLogOut={() => {
          logOut();
          setSession(null);
        }}
      />
    </TrussProvider>
  );
}

function Site({ session, onLogOut }: { session: Session; onLogOut: () => void }) {
  const [assignment, setAssignment] = useState<Assignment | null>(storedAssignment);
  useEffect(() => {
    void loadAssignment(session).then((loaded) => loaded && setAssignment(loaded));
  }, [session]);
  return (
    <>
      <header className="top">
        <div>
          <strong>{session.user.name}</strong>
          <span>{session.company.name}</span>
        </div>
        <button type="button" onClick={onLogOut}>
          Log out
        </button>
      </header>
      <SyncBar />
      <main>
        {assignment ? (
          <>
            <TodaysReport reportId={assignment.reportId} title={assignment.title} />
            <OnSite reportId={assignment.reportId} />
            <ProjectFeed projectId={assignment.projectId} />
          </>
        ) : (
          <p className="card">Looking for today's report…</p>
        )}
        <Notifications />
      </main>
    </>
  );
}

function Login({ onSession }: { onSession: (session: Session) => void }) {
  const [error, setError] = useState<string | null>(null);
  const enter = (email: string) =>
    void logIn(email, "truss-demo").then(onSession, (failure: unknown) => setError(failure instanceof Error ? failure.message : String(failure)));
  return (
    <main className="login">
      <h1>On site</h1>
      <p>
        Log in as one of the demo users (password <code>truss-demo</code>).
      </p>
      {DEMO_LOGINS.map((email) => (
        <button key={email} type="button" data-email={email} onClick={() => enter(email)}>
          {email}
        </button>
      ))}
      {error && <p role="alert">{error}</p>}
    </main>
  );
}
