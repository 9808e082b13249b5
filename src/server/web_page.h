// The web chat page of `edgellm serve` (docs/serving.md): the files of web/, compiled into the binary by
// cmake/embed_web.cmake, served at / (index.html) and /web/<file>. The page is static and needs no API
// key; the API calls it makes from the browser carry the key the user gives it.
#pragma once

#include <httplib.h>

#include <cstddef>
#include <span>

namespace edgellm::server {

// One file of web/, as the build embedded it. Everything points into static storage.
struct WebFile {
  const char* path;          // relative to web/: "index.html", "app.js"
  const char* content_type;  // from the extension: "text/javascript; charset=utf-8"
  const char* etag;          // quoted, the first 64 bits of the file's SHA-256: "\"3f1c...\""
  const unsigned char* data;
  size_t size_bytes;
};

// The files of web/, sorted by path (defined in the source cmake/embed_web.cmake generates).
std::span<const WebFile> embedded_web_files();

// Serves `/` (index.html) and every file at `/web/<path>` (GET and HEAD) with its content type,
// `Cache-Control: no-cache`, its ETag (If-None-Match -> 304), `X-Content-Type-Options: nosniff` and a
// Content-Security-Policy that lets the page load from and connect to its own server only, with no inline
// script or style (model output that reached the DOM as markup would stay inert).
// Register before any other handler of `/`: httplib answers with the first route that matches.
// Thread-safe: the handlers only read the embedded files.
void register_web_page(httplib::Server& http);

}  // namespace edgellm::server
