/*
** http.c: HTTP(S) requests on the loop through curl_multi (module
** "ckfb.core.http"). The request and response bodies stream through
** files when asked (body_file, sink), so their size never lands in memory.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "ckfb.h"
#include "version.h"
#include "lcurl.h"
#include "loop.h"

typedef struct {
  loop_op base;
  CURL *easy;
  struct curl_slist *headers;
  struct curl_slist *connect_to;
  buf body, head;
  FILE *upload, *sink;
  curl_off_t upload_left;  /* bytes of body_file still to send (a range of it) */
  CURLcode rc;
  int write_failed;
  int too_large;  /* the in-memory body passed max_body: the transfer was stopped */
  size_t max_body;
  int stream;     /* body handed to Lua as it arrives (op:take) */
  int paused;     /* the taker is behind: curl waits */
  char errbuf[CURL_ERROR_SIZE];
  char *where;    /* "METHOD url-without-query", for messages */
} http_op;


#define STREAM_BACKLOG (8 * 1024 * 1024)  /* untaken bytes before the transfer pauses */
#define DEFAULT_MAX_BODY ((size_t)64 * 1024 * 1024)  /* a body kept in memory; files stream */

static size_t on_body (char *data, size_t size, size_t n, void *ud) {
  http_op *h = ud;
  size_t len = size * n;
  if (h->stream) {
    if (h->body.len + len > STREAM_BACKLOG && h->body.len > 0) {
      h->paused = 1;
      return CURL_WRITEFUNC_PAUSE;  /* curl hands the same data again after unpausing */
    }
    if (!buf_append(&h->body, data, len))
      return 0;
    loop_op_progress(&h->base);
    return len;
  }
  if (h->sink != NULL) {
    if (fwrite(data, 1, len, h->sink) != len) {
      h->write_failed = errno ? errno : EIO;
      return 0;
    }
    return len;
  }
  if (h->body.len + len > h->max_body) {  /* an endless body must not take the memory */
    h->too_large = 1;
    return 0;
  }
  return buf_append(&h->body, data, len) ? len : 0;
}


/* Keeps the header block of the last response only (after 100, redirects). */
static size_t on_header (char *data, size_t size, size_t n, void *ud) {
  http_op *h = ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
    h->head.len = 0;
  return buf_append(&h->head, data, len) ? len : 0;
}


static size_t on_upload (char *data, size_t size, size_t n, void *ud) {
  http_op *h = ud;
  size_t want = size * n;
  if ((curl_off_t)want > h->upload_left)
    want = (size_t)h->upload_left;
  size_t got = fread(data, 1, want, h->upload);
  h->upload_left -= (curl_off_t)got;
  return ferror(h->upload) ? CURL_READFUNC_ABORT : got;
}


/* Debian's libcurl 7.88 opens sockets without CLOEXEC (reference §4.3). */
static int on_socket (void *ud, curl_socket_t fd, curlsocktype purpose) {
  (void)ud;
  (void)purpose;
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  return CURL_SOCKOPT_OK;
}


static void http_on_done (loop_op *op, CURLcode rc) {
  http_op *h = (http_op *)op;
  h->rc = rc;
  if (h->sink != NULL && fclose(h->sink) != 0 && h->rc == CURLE_OK)
    h->write_failed = errno;
  h->sink = NULL;
  loop_op_finish(op);
}


/* Pushes {name = value} from the header block; repeated names join with ", ". */
static void push_headers (lua_State *L, const buf *head) {
  lua_newtable(L);
  const char *p = head->data, *end = head->data + head->len;
  while (p != NULL && p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = eol ? eol : end;
    const char *colon = memchr(p, ':', (size_t)(line_end - p));
    if (colon != NULL && memcmp(p, "HTTP/", 5) != 0) {
      luaL_Buffer name;
      luaL_buffinit(L, &name);
      for (const char *c = p; c < colon; c++)
        luaL_addchar(&name, (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c));
      luaL_pushresult(&name);
      const char *v = colon + 1, *ve = line_end;
      while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -3) == LUA_TSTRING) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      }
      lua_rawset(L, -3);
    }
    p = eol ? eol + 1 : NULL;
  }
}


static const char *error_code (CURLcode rc) {
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return "http.timeout";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT: return "http.connect";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE: return "http.tls";
    case CURLE_READ_ERROR:
    case CURLE_WRITE_ERROR: return "http.io";
    case CURLE_GOT_NOTHING:   /* the connection dropped before or during the answer */
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE: return "http.dropped";
    default: return "http.error";
  }
}


static int http_result (loop_op *op, lua_State *L) {
  http_op *h = (http_op *)op;
  if (op->cancelled)
    return ckfb_push_error(L, "http.cancelled", "%s: cancelled", h->where);
  if (h->write_failed)
    return ckfb_push_error(L, "http.io", "%s: cannot write the response: %s",
                           h->where, strerror(h->write_failed));
  if (h->too_large)
    return ckfb_push_error(L, "http.too_large", "%s: the response body passed the %I-byte limit "
                           "(max_body; a sink streams it to a file instead)", h->where,
                           (lua_Integer)h->max_body);
  if (h->rc != CURLE_OK)
    return ckfb_push_error(L, error_code(h->rc), "%s: %s", h->where,
                           h->errbuf[0] ? h->errbuf : lcurl.easy_strerror(h->rc));
  long status = 0;
  lcurl.easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  push_headers(L, &h->head);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, h->body.data ? h->body.data : "", h->body.len);
  lua_setfield(L, -2, "body");
  double seconds = 0;
  lcurl.easy_getinfo(h->easy, CURLINFO_TOTAL_TIME, &seconds);
  lua_pushnumber(L, seconds);
  lua_setfield(L, -2, "time");
  return 1;
}


static void http_release (loop_op *op) {
  http_op *h = (http_op *)op;
  if (h->easy != NULL) {
    if (loop_multi_if_any() != NULL)
      lcurl.multi_remove_handle(loop_multi_if_any(), h->easy);
    lcurl.easy_cleanup(h->easy);
    h->easy = NULL;
  }
  lcurl.slist_free_all(h->headers);
  lcurl.slist_free_all(h->connect_to);
  h->connect_to = NULL;
  h->headers = NULL;
  buf_free(&h->body);
  buf_free(&h->head);
  if (h->upload != NULL)
    fclose(h->upload);
  if (h->sink != NULL)
    fclose(h->sink);
  h->upload = h->sink = NULL;
  free(h->where);
  h->where = NULL;
}


/* op:take() -> the body received since the last take, the status so far */
static int http_take (loop_op *op, lua_State *L) {
  http_op *h = (http_op *)op;
  lua_pushlstring(L, h->body.data ? h->body.data : "", h->body.len);
  h->body.len = 0;
  long status = 0;
  if (h->easy != NULL)
    lcurl.easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
  lua_pushinteger(L, status);
  if (h->paused && h->easy != NULL) {
    h->paused = 0;
    lcurl.easy_pause(h->easy, CURLPAUSE_CONT);
  }
  return 2;
}


static const op_class http_class = {
  .kind = "http",
  .on_curl_done = http_on_done,
  .push_result = http_result,
  .release = http_release,
  .take = http_take,
};


/* Optional string field k of the table at idx, or NULL. Only a string: a number
** would be converted on the stack, and popping it would free what we return. */
static const char *opt_field (lua_State *L, int idx, const char *k) {
  int type = lua_getfield(L, idx, k);
  if (type != LUA_TNIL && type != LUA_TSTRING)
    luaL_error(L, "http.request: '%s' must be a string, not a %s", k, lua_typename(L, type));
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1);  /* the request table keeps the string alive */
  return s;
}


static void set_blob (CURL *easy, CURLoption opt, const char *data) {
  struct curl_blob blob = {(void *)data, strlen(data), CURL_BLOB_COPY};
  lcurl.easy_setopt(easy, opt, &blob);
}


/* tls = {ca_file, ca_data, cert, key, cert_data, key_data, insecure} (ca_file or ca_data: only that CA) */
static void set_tls (lua_State *L, http_op *h) {
  if (lua_getfield(L, 1, "tls") != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  int t = lua_gettop(L);
  const char *v;
  const char *ca_file = opt_field(L, t, "ca_file"), *ca_data = opt_field(L, t, "ca_data");
  if (ca_file != NULL || ca_data != NULL) {
    /* A CA given replaces the system's trust store, as client-go's does: Debian's
       libcurl would also trust /etc/ssl/certs (its built-in CA path and bundle). */
    lcurl.easy_setopt(h->easy, CURLOPT_CAPATH, NULL);
    lcurl.easy_setopt(h->easy, CURLOPT_CAINFO, ca_file);
  }
  if (ca_data != NULL)
    set_blob(h->easy, CURLOPT_CAINFO_BLOB, ca_data);
  if ((v = opt_field(L, t, "cert")) != NULL)
    lcurl.easy_setopt(h->easy, CURLOPT_SSLCERT, v);
  if ((v = opt_field(L, t, "key")) != NULL)
    lcurl.easy_setopt(h->easy, CURLOPT_SSLKEY, v);
  if ((v = opt_field(L, t, "cert_data")) != NULL)
    set_blob(h->easy, CURLOPT_SSLCERT_BLOB, v);
  if ((v = opt_field(L, t, "key_data")) != NULL)
    set_blob(h->easy, CURLOPT_SSLKEY_BLOB, v);
  lua_getfield(L, t, "insecure");
  if (lua_toboolean(L, -1)) {
    lcurl.easy_setopt(h->easy, CURLOPT_SSL_VERIFYPEER, 0L);
    lcurl.easy_setopt(h->easy, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  lua_pop(L, 2);
}


/* A header's name or value: a string (or a number, as text) without a line
** break, which would start a header, or a request, of the data's choosing. */
static const char *header_text (lua_State *L, int idx, const char *what) {
  if (lua_type(L, idx) != LUA_TSTRING && lua_type(L, idx) != LUA_TNUMBER)
    luaL_error(L, "http: a header %s must be a string, not a %s", what, luaL_typename(L, idx));
  size_t len;
  const char *text = lua_tolstring(L, idx, &len);  /* idx is a copy: lua_next keeps its key */
  if (strcspn(text, "\r\n") != len)
    luaL_error(L, "http: a header %s may not hold a line break (or a NUL)", what);
  return text;
}


/* headers = {Name = value}; returns 0 when memory ran out. */
static int set_headers (lua_State *L, http_op *h) {
  if (lua_getfield(L, 1, "headers") == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pushvalue(L, -2);  /* converting the key itself would derail lua_next */
      const char *name = header_text(L, -1, "name");
      const char *line = lua_pushfstring(L, "%s: %s", name, header_text(L, -2, "value"));
      struct curl_slist *next = lcurl.slist_append(h->headers, line);
      if (next == NULL)
        return 0;
      h->headers = next;
      lua_pop(L, 3);
    }
  }
  lua_pop(L, 1);
  lcurl.easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers);
  return 1;
}


/* Sets the body from `body` (a string) or `body_file` (streamed); returns errno or 0. */
static int set_body (lua_State *L, http_op *h, const char *method) {
  size_t len;
  lua_getfield(L, 1, "body");
  const char *body = luaL_optlstring(L, -1, NULL, &len);
  lua_pop(L, 1);
  const char *file = opt_field(L, 1, "body_file");
  if (body != NULL) {
    lcurl.easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    lcurl.easy_setopt(h->easy, CURLOPT_COPYPOSTFIELDS, body);
  } else if (file != NULL) {
    h->upload = fopen(file, "rb");
    struct stat st;
    if (h->upload == NULL || fstat(fileno(h->upload), &st) != 0)
      return errno;
    lua_getfield(L, 1, "body_offset");
    curl_off_t offset = (curl_off_t)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 1, "body_length");
    curl_off_t length = (curl_off_t)luaL_optinteger(L, -1, st.st_size - offset);
    lua_pop(L, 2);
    if (offset < 0 || length < 0 || offset + length > st.st_size)
      return ERANGE;
    if (fseeko(h->upload, offset, SEEK_SET) != 0)
      return errno;
    h->upload_left = length;
    lcurl.easy_setopt(h->easy, CURLOPT_UPLOAD, 1L);
    lcurl.easy_setopt(h->easy, CURLOPT_READFUNCTION, on_upload);
    lcurl.easy_setopt(h->easy, CURLOPT_READDATA, h);
    lcurl.easy_setopt(h->easy, CURLOPT_INFILESIZE_LARGE, length);
  }
  if (strcmp(method, "HEAD") == 0)
    lcurl.easy_setopt(h->easy, CURLOPT_NOBODY, 1L);
  else if (strcmp(method, "GET") != 0 || body != NULL || file != NULL)
    lcurl.easy_setopt(h->easy, CURLOPT_CUSTOMREQUEST, method);
  return 0;
}


/* The sink file: truncated, or with sink_offset kept and written from there (a range). */
static FILE *open_sink (lua_State *L, const char *path) {
  lua_getfield(L, 1, "sink_offset");
  int ranged = !lua_isnil(L, -1);
  off_t offset = (off_t)luaL_optinteger(L, -1, 0);
  lua_pop(L, 1);
  if (!ranged)
    return fopen(path, "wb");
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
  if (f == NULL || fseeko(f, offset, SEEK_SET) != 0) {
    int e = errno;
    if (f != NULL)
      fclose(f);
    else if (fd >= 0)
      close(fd);
    errno = e;
    return NULL;
  }
  return f;
}


static void set_basics (lua_State *L, http_op *h, const char *url) {
  CURL *e = h->easy;
  lcurl.easy_setopt(e, CURLOPT_URL, url);
  lcurl.easy_setopt(e, CURLOPT_PRIVATE, (char *)h);
  lcurl.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  lcurl.easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
  lcurl.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  lcurl.easy_setopt(e, CURLOPT_WRITEDATA, h);
  lcurl.easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  lcurl.easy_setopt(e, CURLOPT_HEADERDATA, h);
  lcurl.easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, on_socket);
  lcurl.easy_setopt(e, CURLOPT_USERAGENT, "ckfb/" CKFB_VERSION);
  /* accept_encoding = false keeps bodies byte for byte (S3 objects stored gzipped) */
  lua_getfield(L, 1, "accept_encoding");
  if (lua_isnil(L, -1))
    lcurl.easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  else if (lua_isstring(L, -1))
    lcurl.easy_setopt(e, CURLOPT_ACCEPT_ENCODING, lua_tostring(L, -1));
  lua_pop(L, 1);  /* the request table keeps the string alive */
  lua_getfield(L, 1, "timeout");
  lcurl.easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(luaL_optnumber(L, -1, 0) * 1000));
  lua_getfield(L, 1, "connect_timeout");
  lcurl.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(luaL_optnumber(L, -1, 30) * 1000));
  lua_getfield(L, 1, "follow");
  lcurl.easy_setopt(e, CURLOPT_FOLLOWLOCATION, (long)lua_toboolean(L, -1));
  /* path_as_is: "." and ".." segments go as they are (an S3 key may hold them) */
  lua_getfield(L, 1, "path_as_is");
  lcurl.easy_setopt(e, CURLOPT_PATH_AS_IS, (long)lua_toboolean(L, -1));
  lua_pop(L, 4);
  const char *proxy = opt_field(L, 1, "proxy");
  if (proxy != NULL)
    lcurl.easy_setopt(e, CURLOPT_PROXY, proxy);
}


/* connect_to = "NAME:PORT:HOST:PORT": the URL's name is used for TLS (SNI and the
   certificate check), the connection goes to HOST (kubeconfig tls-server-name). */
static int set_connect_to (lua_State *L, http_op *h) {
  const char *to = opt_field(L, 1, "connect_to");
  if (to == NULL)
    return 1;
  h->connect_to = lcurl.slist_append(NULL, to);
  if (h->connect_to == NULL)
    return 0;
  lcurl.easy_setopt(h->easy, CURLOPT_CONNECT_TO, h->connect_to);
  return 1;
}


/*
** http.request{method, url, headers, body | body_file, sink, timeout,
**              connect_timeout, follow, proxy, tls} -> op | nil, err
*/
static int l_request (lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "url");
  const char *url = luaL_checkstring(L, -1);
  const char *method = opt_field(L, 1, "method");
  method = method ? method : (opt_field(L, 1, "body_file") ? "PUT" : "GET");
  const char *sink = opt_field(L, 1, "sink");
  lua_getfield(L, 1, "stream");
  int stream = lua_toboolean(L, -1);
  lua_pop(L, 1);
  loop_multi(L);  /* before the op: state close frees the multi handle last */
  http_op *h = (http_op *)loop_op_new(L, sizeof(http_op), &http_class);
  int op_idx = lua_gettop(L);
  h->where = strndup(url, strcspn(url, "?#"));  /* queries may hold signatures */
  lua_pushfstring(L, "%s %s", method, h->where ? h->where : "");
  free(h->where);
  h->where = strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  h->stream = stream && sink == NULL;
  lua_getfield(L, 1, "max_body");
  h->max_body = lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0 ? (size_t)lua_tointeger(L, -1)
                                                                 : DEFAULT_MAX_BODY;
  lua_pop(L, 1);
  h->easy = lcurl.easy_init();
  if (h->easy == NULL || h->where == NULL)
    return luaL_error(L, "not enough memory");  /* the op's __gc frees the rest */
  set_basics(L, h, url);
  set_tls(L, h);
  if (!set_headers(L, h) || !set_connect_to(L, h))
    return luaL_error(L, "not enough memory");
  int e = set_body(L, h, method);
  if (e != 0)
    return ckfb_push_error(L, "http.io", "%s: cannot read the body file: %s", h->where, strerror(e));
  if (sink != NULL && (h->sink = open_sink(L, sink)) == NULL)
    return ckfb_push_error(L, "http.io", "%s: cannot open '%s': %s", h->where, sink, strerror(errno));
  if (lcurl.multi_add_handle(loop_multi(L), h->easy) != CURLM_OK)
    return luaL_error(L, "cannot add the request to the loop");
  lua_pushvalue(L, op_idx);
  loop_op_start(L, -1);
  return 1;
}


static const luaL_Reg http_funcs[] = {
  {"request", l_request},
  {NULL, NULL}
};


int luaopen_ckfb_core_http (lua_State *L) {
  luaL_newlib(L, http_funcs);
  return 1;
}
