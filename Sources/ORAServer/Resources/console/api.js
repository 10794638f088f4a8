// Calls to ora's API with the console's credential: the HttpOnly cookie the browser sends by itself. Scripts never
// see the token. Every refusal arrives as an ApiError with the server's code and sentence.

/** A refusal or failure of the API: `status`, the stable `code` and the server's sentence as `message`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const loggedOutListeners = new Set();

/** Calls `listener` when the server no longer accepts the credential (expired, revoked, logged out elsewhere). */
export function onLoggedOut(listener) {
  loggedOutListeners.add(listener);
}

async function refusal(response) {
  const answer = await response.json().catch(() => ({}));
  const message = answer.message || describeStatus(response.status);
  return new ApiError(response.status, answer.error || 'http_' + response.status, message);
}

function describeStatus(status) {
  if (status === 503) return 'The server cannot reach the directory or the database right now; try again shortly.';
  if (status >= 500) return 'The server failed (HTTP ' + status + ').';
  return 'The server refused the request (HTTP ' + status + ').';
}

/**
 * Calls `method path` under /api/v1 with an optional JSON `body`; resolves to the answer's JSON (or null for 204).
 * A 401 tells the listeners of onLoggedOut and rejects.
 */
export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch('/api/v1' + path, init);
  } catch {
    throw new ApiError(0, 'unreachable', 'The server cannot be reached. Check your connection and try again.');
  }
  if (response.status === 401 && !path.startsWith('/login/')) {
    for (const listener of loggedOutListeners) listener();
  }
  if (!response.ok) throw await refusal(response);
  return response.status === 204 ? null : response.json();
}

/**
 * Follows a server-sent event stream under /api/v1 and calls `onEvent` with each event's JSON data and its name
 * (`state`, `chat`, …) until `signal` aborts or the stream ends. Rejects with an ApiError when the server refuses
 * the stream.
 */
export async function follow(path, onEvent, signal) {
  const response = await fetch('/api/v1' + path, {
    credentials: 'same-origin', headers: { 'Accept': 'text/event-stream' }, signal,
  });
  if (response.status === 401) for (const listener of loggedOutListeners) listener();
  if (!response.ok) throw await refusal(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += value;
    let end;
    while ((end = pending.indexOf('\n\n')) >= 0) {
      const lines = pending.slice(0, end).split('\n');
      const data = lines.filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trimStart())
        .join('\n');
      const name = (lines.find((line) => line.startsWith('event:')) || 'event: message').slice(6).trim();
      pending = pending.slice(end + 2);
      if (data) onEvent(JSON.parse(data), name);
    }
  }
}
