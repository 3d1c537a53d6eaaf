/** The ERP's REST API, called with the logged-in user's token. */

/** A refusal from the API, with its `{ error: { code, message } }`. */
export class ApiError extends Error {
  override readonly name = "ApiError";

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Calls the API; resolves with the JSON body, rejects with an {@link ApiError}, or a plain `Error` when the server could not be reached. */
export type Api = <T>(path: string, init?: { method?: string; body?: unknown }) => Promise<T>;

/** An {@link Api} that sends `token` as a bearer token (or none, for the login). */
export function createApi(token?: string): Api {
  return async <T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (init.body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(`/api${path}`, {
        method: init.method ?? (init.body === undefined ? "GET" : "POST"),
        headers,
        body: init.body === undefined ? null : JSON.stringify(init.body),
      });
    } catch (error) {
      // Never reached the server: not an ApiError, so callers can tell (see `isNetworkFailure`).
      throw new Error("The server cannot be reached (offline?); try again once connected.", { cause: error });
    }
    if (response.status === 204) return undefined as T;
    const body = (await response.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
    if (!response.ok) {
      throw new ApiError(response.status, body?.error?.code ?? "HTTP_ERROR", body?.error?.message ?? `The server answered ${response.status}.`);
    }
    return body as T;
  };
}
