/**
 * The console's shell: finds out whether the hub is claimed and who the caller is, then lays out the
 * navigation and the page the hash names. Every page is reachable by keyboard; each focuses its heading.
 */
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { Api, type ApiError, asApiError } from "./api/client.ts";
import type { HubInfo, LockRecord, User } from "./api/types.ts";
import { isAdmin, type Session, SessionContext, useSession } from "./context.ts";
import { setHubClock } from "./lib/format.ts";
import { clearPendingKit, loadPendingKit, type PendingKit, savePendingKit } from "./lib/kit.ts";
import { useRoute } from "./lib/router.ts";
import { ActivityPage } from "./pages/activity.tsx";
import { CheckPage } from "./pages/check.tsx";
import { GuestCodesPage } from "./pages/guests.tsx";
import { HealthPage } from "./pages/health.tsx";
import { ModePage } from "./pages/mode.tsx";
import { OverviewPage } from "./pages/overview.tsx";
import { PeoplePage } from "./pages/people.tsx";
import { PersonPage } from "./pages/person.tsx";
import { RecoveryPage } from "./pages/recovery.tsx";
import { KitGate } from "./pages/recovery-kit.tsx";
import { ReviewPage } from "./pages/review.tsx";
import { SchedulesPage } from "./pages/schedules.tsx";
import { SetupPage } from "./pages/setup.tsx";
import { SignInPage } from "./pages/signin.tsx";
import { ErrorBox } from "./ui/common.tsx";

const api = new Api();
const LOCK_KEY = "latchkey.console.lock";

type Boot =
  | { state: "loading" }
  | { state: "unreachable"; error: ApiError; revokeError: ApiError | null }
  | { state: "setup"; hub: HubInfo }
  | { state: "signin"; hub: HubInfo; error: ApiError | null; revokeError: ApiError | null }
  | { state: "ready"; hub: HubInfo; me: User; locks: LockRecord[] };

export const NAV = [
  { path: "", label: "Overview" },
  { path: "people", label: "People" },
  { path: "guests", label: "Guest codes" },
  { path: "schedules", label: "Schedules" },
  { path: "mode", label: "Mode" },
  { path: "activity", label: "Activity" },
  { path: "review", label: "Access review" },
  { path: "health", label: "Health" },
  { path: "check", label: "Offline check" },
  { path: "recovery", label: "Recovery kit" },
] as const;

export function App() {
  const [boot, setBoot] = useState<Boot>({ state: "loading" });
  const [lockId, setLockId] = useState<string | null>(() => storedLock());
  const [kit, setKit] = useState<PendingKit | null>(() => loadPendingKit());

  const holdKit = useCallback((k: PendingKit) => {
    savePendingKit(k);
    setKit(k);
  }, []);
  const confirmKit = useCallback(() => {
    clearPendingKit();
    setKit(null);
  }, []);

  const start = useCallback(async (revokeError: ApiError | null = null) => {
    let hub: HubInfo;
    try {
      hub = await api.get<HubInfo>("/api/v1/hub");
    } catch (e) {
      setBoot({ state: "unreachable", error: asApiError(e), revokeError });
      return;
    }
    // A kit kept for another hub (this browser was pointed elsewhere) is not this hub's.
    const held = loadPendingKit();
    if (held && held.deviceId !== hub.deviceId) {
      clearPendingKit();
      setKit(null);
    }
    if (!hub.claimed) {
      setBoot({ state: "setup", hub });
      return;
    }
    if (!api.token) {
      setBoot({ state: "signin", hub, error: null, revokeError });
      return;
    }
    try {
      const me = await api.get<User>("/api/v1/me");
      const locks = await api.get<LockRecord[]>("/api/v1/locks");
      if (locks[0]) setHubClock(locks[0].status.clock.now);
      setBoot({ state: "ready", hub, me, locks });
    } catch (e) {
      const err = asApiError(e);
      if (err.code === "LK_UNAUTHENTICATED") api.setToken(null);
      setBoot({ state: "signin", hub, error: err, revokeError: null });
    }
  }, []);

  useEffect(() => {
    api.onUnauthenticated = () => {
      api.setToken(null);
      void start();
    };
    void start();
  }, [start]);

  const reloadLocks = useCallback(() => {
    void api.get<LockRecord[]>("/api/v1/locks").then(
      (locks) => {
        if (locks[0]) setHubClock(locks[0].status.clock.now);
        setBoot((b) => (b.state === "ready" ? { ...b, locks } : b));
      },
      () => {},
    );
  }, []);

  const session = useMemo<Session | null>(() => {
    if (boot.state !== "ready") return null;
    const lock = boot.locks.find((l) => l.id === lockId) ?? boot.locks[0];
    if (!lock) return null;
    return {
      api,
      hub: boot.hub,
      me: boot.me,
      locks: boot.locks,
      lock,
      selectLock: (id) => {
        setLockId(id);
        try {
          localStorage.setItem(LOCK_KEY, id);
        } catch {
          // not kept
        }
      },
      reloadLocks,
      signOut: () => {
        void api.signOut().then((err) => {
          confirmKit();
          return start(err);
        });
      },
      kit,
      holdKit,
      confirmKit,
    };
  }, [boot, lockId, reloadLocks, start, kit, holdKit, confirmKit]);

  // A kit just made by claiming or recovering gates the console until the owner confirms saving it (again
  // after a reload). A new code made on the Recovery kit page is shown there instead.
  const gated =
    kit !== null &&
    kit.reason !== "rotate" &&
    api.token !== null &&
    (boot.state === "ready" || boot.state === "setup" || boot.state === "signin");
  if (gated)
    return (
      <Bare>
        <KitGate
          api={api}
          kit={kit}
          onContinue={() => {
            confirmKit();
            void start();
          }}
        />
      </Bare>
    );

  switch (boot.state) {
    case "loading":
      return (
        <Bare>
          <p aria-busy="true">Connecting to the hub…</p>
        </Bare>
      );
    case "unreachable":
      return (
        <Bare>
          <h1>The hub does not answer</h1>
          {boot.revokeError ? (
            <p class="warn-text">
              You are signed out on this device, but the hub could not revoke the token: revoke it under
              People → you → API tokens once the hub answers.
            </p>
          ) : null}
          <ErrorBox error={boot.error} title="No answer" />
          <button type="button" class="btn btn-primary" onClick={() => void start()}>
            Try again
          </button>
        </Bare>
      );
    case "setup":
      return (
        <Bare>
          <SetupPage
            api={api}
            hub={boot.hub}
            onClaimed={(k) => {
              holdKit(k);
              void start();
            }}
          />
        </Bare>
      );
    case "signin":
      return (
        <Bare>
          <SignInPage
            api={api}
            hub={boot.hub}
            error={boot.error}
            revokeError={boot.revokeError}
            onDone={() => void start()}
            onRecovered={(k) => {
              holdKit(k);
              void start();
            }}
          />
        </Bare>
      );
    case "ready":
      if (!session)
        return (
          <Bare>
            <h1>No lock on this hub</h1>
            <p>Add one with the CLI: npx latchkey lock add --id front-door</p>
          </Bare>
        );
      return (
        <SessionContext.Provider value={session}>
          <Shell />
        </SessionContext.Provider>
      );
  }
}

function storedLock(): string | null {
  try {
    return localStorage.getItem(LOCK_KEY);
  } catch {
    return null;
  }
}

/** The page before sign-in: no navigation. */
function Bare({ children }: { children: ComponentChildren }) {
  return (
    <div class="bare">
      <div class="brand brand-bare">
        <Logo /> Latchkey
      </div>
      <main id="main">{children}</main>
    </div>
  );
}

function Logo() {
  return (
    <svg class="logo" viewBox="0 0 24 24" width="24" height="24" aria-hidden="true">
      <rect x="4" y="10" width="16" height="11" rx="2" fill="currentColor" />
      <path d="M8 10V7a4 4 0 0 1 8 0v3" fill="none" stroke="currentColor" stroke-width="2.2" />
      <circle cx="12" cy="15.5" r="1.8" fill="var(--bg)" />
    </svg>
  );
}

function Shell() {
  const s = useRoute();
  const session = useSession();
  const [menuOpen, setMenuOpen] = useState(false);
  const [signingOut, setSigningOut] = useState(false);
  const menuButton = useRef<HTMLButtonElement>(null);
  const top = s.parts[0] ?? "";
  useEffect(() => setMenuOpen(false), [top, s.parts[1]]);
  // Escape closes the phone menu and puts the keyboard back on its button (listening from the render
  // that opened it: a layout effect runs before the next key can arrive).
  useLayoutEffect(() => {
    if (!menuOpen) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== "Escape") return;
      setMenuOpen(false);
      menuButton.current?.focus();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [menuOpen]);
  return (
    <div class="shell">
      <button type="button" class="skip" onClick={skipToMain}>
        Skip to content
      </button>
      <header class="topbar">
        <div class="brand">
          <Logo /> <span>Latchkey</span>
        </div>
        <div class="topbar-right">
          {session.locks.length > 1 ? (
            <label class="lock-select">
              <span class="visually-hidden">Door</span>
              <select value={session.lock.id} onChange={(e) => session.selectLock(e.currentTarget.value)}>
                {session.locks.map((l) => (
                  <option key={l.id} value={l.id}>
                    {l.name}
                  </option>
                ))}
              </select>
            </label>
          ) : (
            <span class="lock-name">{session.lock.name}</span>
          )}
          <span class="me" title={`Signed in as ${session.me.name} (${session.me.role})`}>
            {session.me.name}
          </span>
          <button
            type="button"
            class="btn btn-small"
            disabled={signingOut}
            onClick={() => {
              setSigningOut(true);
              session.signOut();
            }}
          >
            {signingOut ? "Signing out…" : "Sign out"}
          </button>
          <button
            type="button"
            ref={menuButton}
            class="btn btn-small menu-toggle"
            aria-expanded={menuOpen}
            aria-controls="nav"
            onClick={() => setMenuOpen((o) => !o)}
          >
            Menu
          </button>
        </div>
      </header>
      <nav id="nav" class={menuOpen ? "nav open" : "nav"} aria-label="Console">
        <ul>
          {NAV.map((n) => (
            <li key={n.path}>
              <a href={`#/${n.path}`} aria-current={top === n.path ? "page" : undefined}>
                {n.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" class="main" tabIndex={-1}>
        {session.kit && top !== "recovery" ? (
          <p class="banner" role="status">
            A new recovery code is waiting to be printed or saved: <a href="#/recovery">Recovery kit</a>.
          </p>
        ) : null}
        {isAdmin(session.me) ? <Page parts={s.parts} query={s.query} /> : <NotAdmin />}
      </main>
    </div>
  );
}

/** The hash routes pages, so "skip to content" moves the focus instead of changing the hash. */
function skipToMain() {
  document.getElementById("main")?.focus();
}

function NotAdmin() {
  const { me } = useSession();
  return (
    <div>
      <h1>Ask an owner or admin</h1>
      <p>
        You are signed in as {me.name} ({me.role}). The console manages the door for owners and admins; your
        own activity is in the CLI (npx latchkey log tail).
      </p>
    </div>
  );
}

function Page({ parts, query }: { parts: readonly string[]; query: URLSearchParams }) {
  const [top, id] = parts;
  switch (top) {
    case undefined:
      return <OverviewPage />;
    case "people":
      return id ? <PersonPage key={id} userId={id} /> : <PeoplePage />;
    case "guests":
      return <GuestCodesPage />;
    case "schedules":
      return <SchedulesPage selected={query.get("person")} />;
    case "mode":
      return <ModePage />;
    case "activity":
      return <ActivityPage />;
    case "review":
      return <ReviewPage />;
    case "health":
      return <HealthPage />;
    case "check":
      return <CheckPage />;
    case "recovery":
      return <RecoveryPage />;
    default:
      return (
        <div>
          <h1>No such page</h1>
          <p>
            <a href="#/">Back to the overview</a>
          </p>
        </div>
      );
  }
}
