// The hosted reset page the Ziik reset mail links to. Plain HTML forms, no JavaScript.
// GET only looks at the token (mail scanners open links); POST spends it.
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { Core } from '../core/index.ts';
import { DependencyUnavailable, isAuthError } from '../core/errors.ts';
import { MAX_PASSWORD_LENGTH } from '../core/passwords.ts';
import { escapeHtml } from '../platform/html.ts';
import { requestContext } from './request-context.ts';


const STYLE = `
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:grid;place-items:center;background:#f3f4f6;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#111827}
main{width:min(420px,92vw);background:#fff;border-radius:12px;box-shadow:0 10px 30px rgba(0,0,0,.08);padding:32px}
.brand{font-weight:700;letter-spacing:.02em;color:#1d4ed8;margin:0 0 8px}
h1{font-size:22px;margin:0 0 8px}
p{margin:0 0 16px;color:#374151}
label{display:block;font-weight:600;margin:16px 0 6px}
input[type=password]{width:100%;padding:10px 12px;border:1px solid #d1d5db;border-radius:8px;font-size:16px}
input[type=password]:focus{outline:2px solid #93c5fd;border-color:#1d4ed8}
.hint{font-size:13px;color:#6b7280;margin:6px 0 0}
button{margin-top:24px;width:100%;padding:12px;border:0;border-radius:8px;background:#1d4ed8;color:#fff;font-size:16px;font-weight:600;cursor:pointer}
button:hover{background:#1e40af}
.alert{padding:12px 14px;border-radius:8px;margin:0 0 16px}
.alert.error{background:#fef2f2;color:#991b1b;border:1px solid #fecaca}
.alert.ok{background:#ecfdf5;color:#065f46;border:1px solid #a7f3d0}
`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)} · Latchkey</title>
<link rel="stylesheet" href="/assets/latchkey.css">
</head>
<body><main>
<p class="brand">Latchkey</p>
${body}
</main></body>
</html>`;
}

function form(token: string, email: string, minLength: number, problem?: string): string {
  return page(
    'Choose a new password',
    `<h1>Choose a new password</h1>
<p>For the account <strong>${escapeHtml(email)}</strong>.</p>
${problem ? `<div class="alert error" role="alert">${escapeHtml(problem)}</div>` : ''}
<form method="post" action="/reset-password">
<input type="hidden" name="token" value="${escapeHtml(token)}">
<label for="password">New password</label>
<input id="password" name="password" type="password" autocomplete="new-password" required minlength="${minLength}" maxlength="${MAX_PASSWORD_LENGTH}" aria-describedby="password-hint">
<p class="hint" id="password-hint">At least ${minLength} characters.</p>
<label for="password_confirm">Confirm new password</label>
<input id="password_confirm" name="password_confirm" type="password" autocomplete="new-password" required maxlength="${MAX_PASSWORD_LENGTH}">
<button type="submit">Set new password</button>
</form>`,
  );
}

const dead = (reason: string) =>
  page(
    'Link not usable',
    `<h1>This link can't be used</h1><div class="alert error" role="alert">${escapeHtml(reason)}</div>
<p>Ask for a new password reset email and use the newest link it contains.</p>`,
  );

const done = page(
  'Password changed',
  `<h1>Password changed</h1><div class="alert ok" role="status">Your password has been changed.</div>
<p>You can now sign in with your new password. Every device that was signed in has been signed out.</p>`,
);

function html(reply: FastifyReply, status: number, body: string) {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    // The token is in the URL: no referrer may carry it off, no cache may keep it.
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-store')
    .header('x-frame-options', 'DENY')
    .header('content-security-policy', "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    .send(body);
}

export async function resetPageRoutes(app: FastifyInstance, { core, minLength }: { core: Core; minLength: number }) {
  // A body fastify cannot read (malformed, too large) is answered as a page too: the person
  // at the form must not be shown a JSON error.
  app.setErrorHandler((error: FastifyError | DependencyUnavailable, request, reply) => {
    if (error instanceof DependencyUnavailable) {
      reply.header('retry-after', String(error.retryAfter));
      return html(reply, 503, dead('This service is briefly unavailable. Please try again in a moment.'));
    }
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) request.log.error({ err: error }, 'unhandled error');
    const reason = status === 413 ? 'The form sent was too large.' : status === 500 ? 'Something went wrong on our side.' : 'The form sent could not be read.';
    return html(reply, status, dead(reason));
  });

  app.get('/assets/latchkey.css', async (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(STYLE),
  );

  app.get<{ Querystring: { token?: string } }>('/reset-password', async (request, reply) => {
    const token = typeof request.query.token === 'string' ? request.query.token : '';
    if (!token) return html(reply, 400, dead('This link is incomplete.'));
    const state = await core.recovery.inspectLink(token);
    if (!state.valid) return html(reply, 400, dead(state.reason));
    return html(reply, 200, form(token, state.email, minLength));
  });

  app.post<{ Body: Record<string, unknown> }>('/reset-password', async (request, reply) => {
    const body = (request.body && typeof request.body === 'object' ? request.body : {}) as Record<string, unknown>;
    const field = (name: string) => (typeof body[name] === 'string' ? (body[name] as string) : '');
    const token = field('token');
    try {
      await core.recovery.resetWithLink({ token, password: field('password'), passwordConfirm: field('password_confirm') }, requestContext(request));
    } catch (error) {
      if (!isAuthError(error)) throw error;
      if (error.code === 'rate_limited') {
        reply.header('retry-after', String(error.retryAfter ?? 60));
        return html(reply, 429, page('Too many attempts', `<h1>Too many attempts</h1><div class="alert error" role="alert">Too many attempts from your network. Try again in ${error.retryAfter ?? 60} seconds.</div>`));
      }
      if (error.code !== 'validation' && error.code !== 'password_policy') return html(reply, 400, dead(error.message));
      // Only a fixable mistake shows the form again, which needs the link's account.
      const state = await core.recovery.inspectLink(token);
      if (!state.valid) return html(reply, 400, dead(state.reason));
      return html(reply, 422, form(token, state.email, minLength, error.message));
    }
    return html(reply, 200, done);
  });
}
