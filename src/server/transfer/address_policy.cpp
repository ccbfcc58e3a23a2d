// Address classification by prefix tables (IANA special-purpose registries for IPv4 and IPv6).
#include "server/transfer/address_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace sdc::server::transfer {

namespace {

struct V4Range {
  uint32_t base;
  int prefix;
  const char* reason;
};

constexpr uint32_t ip4(int a, int b, int c, int d) {
  return (uint32_t(a) << 24) | (uint32_t(b) << 16) | (uint32_t(c) << 8) | uint32_t(d);
}

// Most specific first: 169.254.169.254 is reported as the metadata service, not just link-local.
constexpr std::array<V4Range, 17> kV4Refused{{
    {ip4(169, 254, 169, 254), 32, "the cloud metadata service"},
    {ip4(100, 100, 100, 200), 32, "the cloud metadata service"},
    {ip4(0, 0, 0, 0), 8, "unspecified (\"this network\")"},
    {ip4(10, 0, 0, 0), 8, "private"},
    {ip4(100, 64, 0, 0), 10, "private (carrier-grade NAT)"},
    {ip4(127, 0, 0, 0), 8, "loopback"},
    {ip4(169, 254, 0, 0), 16, "link-local"},
    {ip4(172, 16, 0, 0), 12, "private"},
    {ip4(192, 0, 0, 0), 24, "reserved (IETF protocol assignments)"},
    {ip4(192, 0, 2, 0), 24, "reserved (documentation)"},
    {ip4(192, 168, 0, 0), 16, "private"},
    {ip4(198, 18, 0, 0), 15, "reserved (benchmarking)"},
    {ip4(198, 51, 100, 0), 24, "reserved (documentation)"},
    {ip4(203, 0, 113, 0), 24, "reserved (documentation)"},
    {ip4(224, 0, 0, 0), 4, "multicast"},
    {ip4(240, 0, 0, 0), 4, "reserved"},  // includes 255.255.255.255 (broadcast)
    {ip4(192, 88, 99, 0), 24, "reserved (6to4 relay anycast)"},
}};

std::optional<std::string> v4_reason(uint32_t a) {
  for (const V4Range& r : kV4Refused) {
    uint32_t mask = r.prefix == 0 ? 0 : ~uint32_t(0) << (32 - r.prefix);
    if ((a & mask) == (r.base & mask)) return std::string(r.reason);
  }
  return std::nullopt;
}

bool starts_with(const uint8_t* b, std::initializer_list<uint8_t> prefix, int bits) {
  int i = 0;
  for (uint8_t p : prefix) {
    int take = bits - i * 8;
    if (take <= 0) break;
    uint8_t mask = take >= 8 ? 0xff : uint8_t(0xff << (8 - take));
    if ((b[i] & mask) != (p & mask)) return false;
    ++i;
  }
  return true;
}

uint32_t v4_at(const uint8_t* b) {
  return ip4(b[0], b[1], b[2], b[3]);
}

std::optional<std::string> v6_reason(const uint8_t* b) {
  static const uint8_t zero[16] = {};
  if (std::memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1))
    return std::string(b[15] == 1 ? "loopback" : "unspecified");
  // IPv4 inside IPv6: ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), 64:ff9b::/96 (NAT64).
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(b, mapped, 12) == 0 || std::memcmp(b, zero, 12) == 0 ||
      starts_with(b, {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0}, 96))
    return v4_reason(v4_at(b + 12));
  if (starts_with(b, {0x20, 0x02}, 16)) return v4_reason(v4_at(b + 2));  // 6to4 2002:V4ADDR::/48
  if (starts_with(b, {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54}, 128))
    return std::string("the cloud metadata service");  // fd00:ec2::254 (AWS IMDS over IPv6)
  if (starts_with(b, {0xfc}, 7)) return std::string("private (unique local)");
  if (starts_with(b, {0xfe, 0x80}, 10)) return std::string("link-local");
  if (starts_with(b, {0xfe, 0xc0}, 10)) return std::string("site-local (deprecated)");
  if (starts_with(b, {0xff}, 8)) return std::string("multicast");
  if (starts_with(b, {0x20, 0x01, 0x0d, 0xb8}, 32)) return std::string("reserved (documentation)");
  if (starts_with(b, {0x01, 0, 0, 0, 0, 0, 0, 0}, 64)) return std::string("reserved (discard)");
  if (starts_with(b, {0x20, 0x01, 0, 0}, 32)) return std::string("reserved (Teredo)");
  return std::nullopt;
}

}  // namespace

std::optional<std::string> non_public_reason(const sockaddr* addr, socklen_t len) {
  if (addr && addr->sa_family == AF_INET && len >= socklen_t(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    return v4_reason(ntohl(in->sin_addr.s_addr));
  }
  if (addr && addr->sa_family == AF_INET6 && len >= socklen_t(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    return v6_reason(in6->sin6_addr.s6_addr);
  }
  return std::string("not an IP address");
}

std::optional<std::string> non_public_reason(const std::string& ip) {
  in_addr a4{};
  if (inet_pton(AF_INET, ip.c_str(), &a4) == 1) return v4_reason(ntohl(a4.s_addr));
  in6_addr a6{};
  if (inet_pton(AF_INET6, ip.c_str(), &a6) == 1) return v6_reason(a6.s6_addr);
  return std::string("not an IP address");
}

std::string address_text(const sockaddr* addr, socklen_t len) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr && addr->sa_family == AF_INET && len >= socklen_t(sizeof(sockaddr_in)))
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, buf, sizeof(buf));
  else if (addr && addr->sa_family == AF_INET6 && len >= socklen_t(sizeof(sockaddr_in6)))
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, buf, sizeof(buf));
  else
    return "(unknown address family)";
  return buf;
}

}  // namespace sdc::server::transfer
