/** Tracking-server URIs as the user gives them: shown without credentials, checked for a scheme. */

/** `http://user:pass@host/x?token=..` → `http://host/x`: safe to show and to store. */
export function redactUri(uri: string): string {
  try {
    const u = new URL(uri);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return uri.replace(/\/\/[^/@]*@/, '//').replace(/\?.*$/, '');
  }
}

/** Whether a URI is one this client can talk to (an MLflow tracking server over HTTP). */
export function isHttpUri(uri: string): boolean {
  return /^https?:\/\/[^/]/i.test(uri);
}

export function hasCredentials(uri: string): boolean {
  try {
    const u = new URL(uri);
    return !!(u.username || u.password);
  } catch {
    return /\/\/[^/@]*@/.test(uri);
  }
}
