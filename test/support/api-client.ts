/** A JSON client of a running hub's API for tests: the status, Cache-Control and the parsed envelope. */

export interface ApiReply {
  readonly status: number;
  readonly cacheControl: string | null;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies of many shapes; the assertions check them
  readonly json: { ok: boolean; data?: any; error?: { code: string; message: string } };
}

/** Call `method path` on `baseUrl` with a JSON `body` (or a `raw` body) and an optional bearer token. */
export async function callApi(
  baseUrl: string,
  method: string,
  path: string,
  body: unknown,
  token: string | null,
  raw?: string,
): Promise<ApiReply> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(baseUrl + path, {
    method,
    headers,
    ...(raw !== undefined ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return {
    status: res.status,
    cacheControl: res.headers.get("cache-control"),
    json: (await res.json()) as ApiReply["json"],
  };
}
