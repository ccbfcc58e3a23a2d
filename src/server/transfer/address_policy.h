// Which network addresses a download may connect to. A URL from a request must not make the
// server reach itself, its LAN or the cloud metadata service (SSRF), so every address a download
// connects to — after DNS, after each redirect — is judged here by its numeric value, never by
// the host name: loopback, private (RFC 1918, CGNAT, IPv6 ULA), link-local (which holds the
// 169.254.169.254 metadata service), unspecified, multicast, broadcast and reserved ranges are
// refused unless the operator allows private downloads. IPv4 carried inside IPv6 (mapped,
// compatible, NAT64, 6to4) is judged as the IPv4 address it carries.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>

namespace sdc::server::transfer {

// Why `addr` is not a public unicast address ("loopback", "private", "link-local", "metadata
// service", …), or nothing when it is one. Families other than IPv4/IPv6 are "not an IP
// address".
std::optional<std::string> non_public_reason(const sockaddr* addr, socklen_t len);

// The same for a numeric address in text ("127.0.0.1", "::1"); "not an IP address" when `ip`
// does not parse.
std::optional<std::string> non_public_reason(const std::string& ip);

// "203.0.113.5" / "2001:db8::1" for logs and messages.
std::string address_text(const sockaddr* addr, socklen_t len);

}  // namespace sdc::server::transfer
