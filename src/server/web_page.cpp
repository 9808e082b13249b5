#include "server/web_page.h"

#include <string>
#include <string_view>

namespace edgellm::server {
namespace {

// httplib routes are regular expressions: "/web/app.js" must not let "." match any character.
std::string web_route_pattern(std::string_view path) {
  std::string pattern;
  for (const char c : path) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
                       c == '_' || c == '-';
    if (!plain) pattern += '\\';
    pattern += c;
  }
  return pattern;
}

// If-None-Match holds "*" or a comma-separated list of ETags (RFC 9110, 13.1.2).
bool web_etag_matches(const std::string& if_none_match, std::string_view etag) {
  if (if_none_match.empty()) return false;
  if (if_none_match == "*") return true;
  return if_none_match.find(etag) != std::string::npos;
}

// The <meta> of index.html says the same minus what a <meta> cannot say (frame-ancestors).
constexpr const char* kWebPageCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

}  // namespace

void register_web_page(httplib::Server& http) {
  for (const WebFile& file : embedded_web_files()) {
    const std::string path = file.path;
    const std::string route = path == "index.html" ? "/" : "/web/" + path;
    const WebFile* served = &file;  // static storage: outlives the server
    const auto handler = [served](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Cache-Control", "no-cache");  // revalidate each time: the ETag makes it a 304
      res.set_header("ETag", served->etag);
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_header("Content-Security-Policy", kWebPageCsp);
      res.set_header("Referrer-Policy", "no-referrer");
      if (web_etag_matches(req.get_header_value("If-None-Match"), served->etag)) {
        res.status = 304;
        return;
      }
      res.set_content(reinterpret_cast<const char*>(served->data), served->size_bytes, served->content_type);
    };
    http.Get(web_route_pattern(route), handler);
    if (route == "/") http.Get(web_route_pattern("/web/" + path), handler);
  }
}

}  // namespace edgellm::server
