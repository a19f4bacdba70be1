// The key a client address is limited under. One IPv6 subscriber is handed a whole /64 (RFC 6177;
// SLAAC needs it), so counting per IPv6 address would give one attacker 2^64 budgets: an IPv6
// address counts as its /64. An IPv4-mapped IPv6 address (::ffff:192.0.2.1, what a dual-stack
// socket reports for an IPv4 client) counts as the IPv4 address it carries.
import net from 'node:net';

/** The eight 16-bit groups of an IPv6 address (with its zone dropped), or undefined. */
function ipv6Groups(address: string): number[] | undefined {
  const text = address.replace(/%.*$/, '');
  if (net.isIPv6(text) === false) return undefined;
  let head = text;
  const tail: number[] = [];
  // A dotted IPv4 tail is two groups.
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(head);
  if (dotted) {
    const [a, b, c, d] = dotted[2].split('.').map(Number);
    head = dotted[1].endsWith('::') ? dotted[1] : dotted[1].slice(0, -1);
    tail.push((a << 8) | b, (c << 8) | d);
  }
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const leftGroups = parse(left);
  const rightGroups = [...parse(right ?? ''), ...tail];
  const missing = 8 - leftGroups.length - rightGroups.length;
  if (right === undefined && missing !== 0) return undefined;
  return [...leftGroups, ...new Array(Math.max(missing, 0)).fill(0), ...rightGroups];
}

/** The limit key of a client address: IPv4 as is, IPv6 by its /64, mapped IPv4 as IPv4. */
export function limitKeyOf(address: string): string {
  const groups = ipv6Groups(address);
  if (!groups) return address;
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (mapped) return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join('.');
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}
