/**
 * One redaction step for everything a process prints: the secrets the configuration holds (the
 * Redis password, AWS secret keys and session tokens, the dashboard password) and the arguments of
 * Redis AUTH commands that client errors echo are replaced by *** on stdout and stderr, whichever
 * library writes the line.
 */

const AUTH_ARGS = /(['"]?AUTH['"]?\s*,\s*)(['"][^'"]*['"])(\s*,\s*['"][^'"]*['"])?/gi;

export function secretsOf(env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  const url = env['REDIS_URL'];
  if (url !== undefined) {
    try {
      const u = new URL(url);
      if (u.password !== '') out.push(decodeURIComponent(u.password), u.password);
    } catch {
      // Not a URL: parseEnv reports it.
    }
  }
  for (const k of ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'OOD_DASHBOARD_PASSWORD']) {
    const v = env[k];
    if (v !== undefined && v !== '') out.push(v);
  }
  // Short strings would redact ordinary words: secrets shorter than 4 characters are not matched.
  return [...new Set(out.filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length);
}

export function redact(text: string, secrets: readonly string[]): string {
  let out = text.replace(AUTH_ARGS, (_m, head: string, first: string, second: string | undefined) => `${head}${second !== undefined ? `${first}, '***'` : "'***'"}`);
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}

let installed = false;

/** Routes process.stdout and process.stderr through `redact` (once per process). */
export function installRedaction(env: NodeJS.ProcessEnv = process.env): void {
  if (installed) return;
  installed = true;
  const secrets = secretsOf(env);
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
      const text = typeof chunk === 'string' ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk).toString('utf8') : undefined;
      return text === undefined ? write(chunk, ...rest) : write(redact(text, secrets), ...rest);
    }) as typeof stream.write;
  }
}
