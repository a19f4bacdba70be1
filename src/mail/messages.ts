// The mails Latchkey sends: plain text and HTML, the secret clearly labelled.

import type { Message } from './mailer.ts';
import { escapeHtml } from '../platform/html.ts';


function layout(title: string, body: string): string {
  return `<!doctype html><html><body style="font-family:system-ui,sans-serif;color:#1f2937;max-width:520px;margin:24px auto;padding:0 16px">
<h1 style="font-size:20px">${escapeHtml(title)}</h1>${body}
<p style="color:#6b7280;font-size:13px">If you did not ask for this, you can ignore this message; your password has not changed.</p>
</body></html>`;
}

export function resetCodeMessage(to: string, username: string, code: string, minutes: number): Message {
  return {
    to,
    subject: 'Your password reset code',
    text: [
      `Hello ${username},`,
      '',
      'Someone asked to reset the password of your account.',
      '',
      `Confirmation code: ${code}`,
      '',
      `The code works once and expires in ${minutes} minutes.`,
      'If you did not ask for this, you can ignore this message; your password has not changed.',
    ].join('\n'),
    html: layout(
      'Reset your password',
      `<p>Hello ${escapeHtml(username)},</p><p>Someone asked to reset the password of your account.</p>
<p>Confirmation code:</p><p style="font-size:28px;font-weight:700;letter-spacing:4px">${escapeHtml(code)}</p>
<p>The code works once and expires in ${minutes} minutes.</p>`,
    ),
  };
}

export function resetLinkMessage(to: string, link: string, minutes: number): Message {
  return {
    to,
    subject: 'Reset your password',
    text: [
      'Hello,',
      '',
      'Someone asked to reset the password of your account. To choose a new one, open this link:',
      '',
      `Reset link: ${link}`,
      '',
      `The link works once and expires in ${minutes} minutes.`,
      'If you did not ask for this, you can ignore this message; your password has not changed.',
    ].join('\n'),
    html: layout(
      'Reset your password',
      `<p>Someone asked to reset the password of your account.</p>
<p><a href="${escapeHtml(link)}" style="display:inline-block;background:#1d4ed8;color:#fff;padding:10px 18px;border-radius:6px;text-decoration:none">Choose a new password</a></p>
<p>Or paste this link into your browser:<br><span style="word-break:break-all">${escapeHtml(link)}</span></p>
<p>The link works once and expires in ${minutes} minutes.</p>`,
    ),
  };
}
