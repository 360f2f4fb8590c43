#ifndef CKFB_LCURL_H
#define CKFB_LCURL_H

#include <curl/curl.h>

/*
** libcurl, loaded with dlopen on the first HTTP request. Linking it costs
** every start of ckfb about 5 ms (libcurl pulls in some 30 libraries), five
** times what Lua itself needs; most runs of a script never speak HTTP
** before they spawn juju, and `ckfb -e` should start as fast as lua5.4.
** Call through `lcurl.<name>` for curl_<name>, after lcurl_load succeeded.
*/
struct lcurl_api {
  CURLcode (*global_init) (long flags);
  CURLM *(*multi_init) (void);
  CURLMcode (*multi_cleanup) (CURLM *multi);
  CURLMcode (*multi_perform) (CURLM *multi, int *running);
  CURLMsg *(*multi_info_read) (CURLM *multi, int *left);
  CURLMcode (*multi_poll) (CURLM *multi, struct curl_waitfd *extra, unsigned n, int timeout_ms, int *numfds);
  CURLMcode (*multi_add_handle) (CURLM *multi, CURL *easy);
  CURLMcode (*multi_remove_handle) (CURLM *multi, CURL *easy);
  CURL *(*easy_init) (void);
  CURLcode (*easy_setopt) (CURL *easy, CURLoption option, ...);
  CURLcode (*easy_getinfo) (CURL *easy, CURLINFO info, ...);
  void (*easy_cleanup) (CURL *easy);
  CURLcode (*easy_pause) (CURL *easy, int bitmask);
  const char *(*easy_strerror) (CURLcode rc);
  struct curl_slist *(*slist_append) (struct curl_slist *list, const char *s);
  void (*slist_free_all) (struct curl_slist *list);
};

extern struct lcurl_api lcurl;

/* Returns NULL once libcurl is loaded, or why it could not be. */
const char *lcurl_load (void);

#endif
