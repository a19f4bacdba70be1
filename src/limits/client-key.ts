// The key a client address is limited under. One IPv6 subscriber is handed a whole /64 (RFC 6177;
// SLAAC needs it), so counting per IPv6 address would give one attacker 2^64 budgets: an IPv6
// address counts as its /64. An IPv4-mapped IPv6 address (::ffff:192.0.2.1, what a dual-stack
// socket reports for an IPv4 client) counts as the IPv4 address it carries. Addresses are read by
// ipaddr.js (the parser fastify's own proxy-addr trusts), so every spelling of one address is one key.
import ipaddr from 'ipaddr.js';

/** The limit key of a client address: IPv4 as is, IPv6 by its /64, mapped IPv4 as IPv4. */
export function limitKeyOf(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  // process() gives an IPv4-mapped IPv6 address back as the IPv4 address.
  const parsed = ipaddr.process(address);
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const groups = (parsed as ipaddr.IPv6).parts.slice(0, 4);
  return `${groups.map((group) => group.toString(16)).join(':')}::/64`;
}

/**
 * The networks a client's limit key lies in, widest last: an IPv6 /64 in its /56 (a home's usual
 * delegation) and /48 (a site's), an IPv4 address in its /24. One holder of a /48 has 65,536 /64s,
 * so a budget counted only per /64 is 65,536 budgets to it. A key that is no address has none.
 */
export function networksOf(limitKey: string): { key: string; prefix: 56 | 48 | 24 }[] {
  if (limitKey.endsWith('::/64')) {
    const groups = limitKey.slice(0, -'::/64'.length).split(':').map((group) => Number.parseInt(group, 16));
    if (groups.length !== 4 || groups.some((group) => !(group >= 0 && group <= 0xffff))) return [];
    const [a, b, c] = groups.map((group) => group.toString(16));
    return [
      { key: `${a}:${b}:${c}:${(groups[3] & 0xff00).toString(16)}::/56`, prefix: 56 },
      { key: `${a}:${b}:${c}::/48`, prefix: 48 },
    ];
  }
  if (ipaddr.IPv4.isValidFourPartDecimal(limitKey)) {
    const [a, b, c] = limitKey.split('.');
    return [{ key: `${a}.${b}.${c}.0/24`, prefix: 24 }];
  }
  return [];
}
