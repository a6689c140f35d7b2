/** Small building blocks every page uses: errors with their code, loading, fields, confirmations. */
import type { ComponentChildren, InputHTMLAttributes } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { type ApiError, asApiError } from "../api/client.ts";

/** An API error as the hub reported it: its code and message (role=alert: screen readers announce it). */
export function ErrorBox({ error, title }: { error: ApiError | null; title?: string }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      <strong>{title ?? "Refused"}</strong> <code class="code">{error.code}</code> {error.detail}
    </div>
  );
}

/** A polite status line (saved, issued, removed...). */
export function Notice({ children }: { children: ComponentChildren }) {
  if (!children) return null;
  return (
    <p class="notice" role="status">
      {children}
    </p>
  );
}

export interface Loaded<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
}

/** Load `fn()` on mount and whenever `deps` change; `reload()` fetches again and keeps the old data meanwhile. */
export function useLoad<T>(fn: (signal: AbortSignal) => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => {
    const ac = new AbortController();
    setLoading(true);
    fnRef.current(ac.signal).then(
      (d) => {
        if (ac.signal.aborted) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (e: unknown) => {
        if (ac.signal.aborted) return;
        setError(asApiError(e));
        setLoading(false);
      },
    );
    return () => ac.abort();
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

/** Run an action; while it runs `busy` is true; its failure lands in `error`. */
export function useAction(): {
  busy: boolean;
  error: ApiError | null;
  run: <T>(fn: () => Promise<T>) => Promise<T | undefined>;
  clear: () => void;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const run = useCallback(async <T,>(fn: () => Promise<T>) => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (e) {
      setError(asApiError(e));
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, clear: useCallback(() => setError(null), []) };
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" aria-busy="true">
      Loading {what}…
    </p>
  );
}

/**
 * A page's heading: focused on navigation so keyboard and screen-reader users land on the new page. It
 * names the browser tab too ("People — Latchkey"): `docTitle`, else the heading when it is plain text.
 */
export function PageTitle({
  children,
  sub,
  docTitle,
}: {
  children: ComponentChildren;
  sub?: ComponentChildren;
  docTitle?: string;
}) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus({ preventScroll: false });
  }, []);
  const name = docTitle ?? (typeof children === "string" ? children : null);
  useEffect(() => {
    document.title = name ? `${name} — Latchkey` : "Latchkey";
  }, [name]);
  return (
    <header class="page-title">
      <h1 tabIndex={-1} ref={ref}>
        {children}
      </h1>
      {sub ? <p class="muted">{sub}</p> : null}
    </header>
  );
}

export function Card({
  title,
  children,
  actions,
  id,
}: {
  title?: ComponentChildren;
  children: ComponentChildren;
  actions?: ComponentChildren;
  id?: string;
}) {
  const headingId = id ? `${id}-h` : undefined;
  return (
    <section class="card" id={id} aria-labelledby={headingId}>
      {title || actions ? (
        <div class="card-head">
          {title ? <h2 id={headingId}>{title}</h2> : <span />}
          {actions ? <div class="card-actions">{actions}</div> : null}
        </div>
      ) : null}
      {children}
    </section>
  );
}

export function Badge({
  tone = "plain",
  children,
}: {
  tone?: "ok" | "warn" | "bad" | "plain" | "info";
  children: ComponentChildren;
}) {
  return <span class={`badge badge-${tone}`}>{children}</span>;
}

interface InputProps {
  label: ComponentChildren;
  value: string;
  onValue: (v: string) => void;
  hint?: ComponentChildren;
  id?: string;
  type?: "text" | "password" | "number" | "time" | "date" | "datetime-local";
  required?: boolean;
  disabled?: boolean;
  maxLength?: number;
  minLength?: number;
  min?: number;
  max?: number;
  pattern?: string;
  placeholder?: string;
  autocomplete?: string;
  inputMode?: "numeric" | "text";
  spellcheck?: boolean;
  "aria-invalid"?: boolean;
  /** Ids of more descriptions (an error shown next to the field). */
  describedBy?: string;
}

let fieldSeq = 0;
const useFieldId = (given?: string) => {
  const ref = useRef<string>(given ?? `f${++fieldSeq}`);
  return ref.current;
};

/** A labelled input; the hint is tied to it with aria-describedby. */
export function Field({ label, value, onValue, hint, id, describedBy, ...rest }: InputProps) {
  const fid = useFieldId(id);
  // Preact types <input> per `type` (a union); InputProps holds only attributes valid for every type here.
  const attrs = { type: "text", ...rest } as unknown as InputHTMLAttributes<HTMLInputElement>;
  const described = [hint ? `${fid}-hint` : "", describedBy ?? ""].filter(Boolean).join(" ");
  return (
    <div class="field">
      <label for={fid}>{label}</label>
      <input
        {...attrs}
        id={fid}
        value={value}
        onInput={(e) => onValue(e.currentTarget.value)}
        aria-describedby={described || undefined}
      />
      {hint ? (
        <small id={`${fid}-hint`} class="hint">
          {hint}
        </small>
      ) : null}
    </div>
  );
}

/**
 * A PIN: hidden as it is typed (a password field the browser does not offer to fill or save as a login),
 * digits keyboard on phones, a Show button to check it, and the hub's refusal (code and message) right
 * under it.
 */
export function PinField({
  label,
  value,
  onValue,
  hint,
  required,
  error,
  errorTitle = "PIN refused",
}: {
  label: ComponentChildren;
  value: string;
  onValue: (v: string) => void;
  hint?: ComponentChildren;
  required?: boolean;
  error?: ApiError | null;
  errorTitle?: string;
}) {
  const fid = useFieldId();
  const [shown, setShown] = useState(false);
  const described = [hint ? `${fid}-hint` : "", error ? `${fid}-error` : ""].filter(Boolean).join(" ");
  return (
    <div class="field">
      <label for={fid}>{label}</label>
      <div class="with-button">
        <input
          {...((shown ? { type: "text" } : { type: "password" }) as InputHTMLAttributes<HTMLInputElement>)}
          id={fid}
          inputMode="numeric"
          autocomplete="new-password"
          pattern="[0-9]*"
          maxLength={12}
          spellcheck={false}
          required={required}
          value={value}
          onInput={(e) => onValue(e.currentTarget.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={described || undefined}
        />
        <button
          type="button"
          class="btn btn-small"
          aria-pressed={shown}
          aria-controls={fid}
          onClick={() => setShown((v) => !v)}
        >
          Show<span class="visually-hidden"> the PIN</span>
        </button>
      </div>
      {hint ? (
        <small id={`${fid}-hint`} class="hint">
          {hint}
        </small>
      ) : null}
      {error ? (
        <div id={`${fid}-error`} class="error field-error" role="alert">
          <strong>{errorTitle}</strong> <code class="code">{error.code}</code> {error.detail}
        </div>
      ) : null}
    </div>
  );
}

export function SelectField<T extends string>({
  label,
  value,
  onValue,
  options,
  hint,
  id,
}: {
  label: ComponentChildren;
  value: T;
  onValue: (v: T) => void;
  options: readonly { value: T; label: string }[];
  hint?: ComponentChildren;
  id?: string;
}) {
  const fid = useFieldId(id);
  return (
    <div class="field">
      <label for={fid}>{label}</label>
      <select
        id={fid}
        value={value}
        onChange={(e) => onValue(e.currentTarget.value as T)}
        aria-describedby={hint ? `${fid}-hint` : undefined}
      >
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      {hint ? (
        <small id={`${fid}-hint`} class="hint">
          {hint}
        </small>
      ) : null}
    </div>
  );
}

export function Checkbox({
  label,
  checked,
  onChecked,
}: {
  label: ComponentChildren;
  checked: boolean;
  onChecked: (v: boolean) => void;
}) {
  return (
    <label class="check">
      <input type="checkbox" checked={checked} onChange={(e) => onChecked(e.currentTarget.checked)} /> {label}
    </label>
  );
}

/**
 * A button for a destructive action that asks once more in place (no modal: the question appears where
 * the button was, as an alertdialog named by `title` and described by the question; focus moves to the
 * confirming button, and Escape or Cancel puts it back).
 */
export function ConfirmButton({
  children,
  question,
  title,
  confirmLabel,
  onConfirm,
  busy,
  tone = "danger",
}: {
  children: ComponentChildren;
  question: ComponentChildren;
  /** What is being confirmed, for assistive technology (default: the confirming button's label). */
  title?: string;
  confirmLabel: string;
  onConfirm: () => void;
  busy?: boolean;
  tone?: "danger" | "plain";
}) {
  const [asking, setAsking] = useState(false);
  const yes = useRef<HTMLButtonElement>(null);
  const trigger = useRef<HTMLButtonElement>(null);
  const refocus = useRef(false);
  const did = useFieldId();
  useEffect(() => {
    if (asking) yes.current?.focus();
    else if (refocus.current) {
      // Cancelled: the keyboard goes back where it was.
      refocus.current = false;
      trigger.current?.focus();
    }
  }, [asking]);
  const cancel = () => {
    refocus.current = true;
    setAsking(false);
  };
  const onKey = (e: KeyboardEvent) => {
    if (e.key === "Escape") cancel();
  };
  if (!asking)
    return (
      <button
        type="button"
        ref={trigger}
        class={tone === "danger" ? "btn btn-danger-outline" : "btn"}
        onClick={() => setAsking(true)}
        disabled={busy}
      >
        {children}
      </button>
    );
  return (
    <span
      class="confirm"
      role="alertdialog"
      aria-labelledby={`${did}-t`}
      aria-describedby={`${did}-q`}
      onKeyDown={onKey}
    >
      <span id={`${did}-t`} class="visually-hidden">
        {title ?? confirmLabel}
      </span>
      <span id={`${did}-q`} class="confirm-q">
        {question}
      </span>
      <button
        type="button"
        class="btn btn-danger"
        ref={yes}
        disabled={busy}
        onClick={() => {
          setAsking(false);
          onConfirm();
        }}
      >
        {confirmLabel}
      </button>
      <button type="button" class="btn" onClick={cancel}>
        Cancel
      </button>
    </span>
  );
}

/** Copy text to the clipboard, with a fallback for non-secure origins (the hub is plain http on a LAN). */
export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.style.position = "fixed";
    ta.style.opacity = "0";
    document.body.appendChild(ta);
    ta.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    ta.remove();
    return ok;
  }
}

/** Save `text` as a file the browser downloads (no network: a blob URL). */
export function downloadText(filename: string, text: string, type = "application/json"): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
