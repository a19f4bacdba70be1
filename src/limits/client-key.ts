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
