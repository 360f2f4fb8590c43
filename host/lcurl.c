/*
** lcurl.c: loads libcurl on first use (see lcurl.h for why).
*/
#include <dlfcn.h>
#include <stddef.h>

#include "lcurl.h"

#define LIBCURL "libcurl.so.4"

struct lcurl_api lcurl;

static const struct {
  const char *symbol;
  size_t offset;
} symbols[] = {
#define SYM(name) {"curl_" #name, offsetof(struct lcurl_api, name)}
  SYM(global_init), SYM(multi_init), SYM(multi_cleanup), SYM(multi_perform),
  SYM(multi_info_read), SYM(multi_poll), SYM(multi_add_handle), SYM(multi_remove_handle),
  SYM(easy_init), SYM(easy_setopt), SYM(easy_getinfo), SYM(easy_cleanup), SYM(easy_pause),
  SYM(easy_strerror), SYM(slist_append), SYM(slist_free_all),
#undef SYM
};


const char *lcurl_load (void) {
  static void *lib = NULL;
  if (lib != NULL)
    return NULL;
  void *handle = dlopen(LIBCURL, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL)
    return dlerror();
  for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
    void *fn = dlsym(handle, symbols[i].symbol);
    if (fn == NULL) {
      dlclose(handle);
      return "libcurl.so.4 lacks a function ckfb needs (libcurl >= 7.68 is required)";
    }
    *(void **)((char *)&lcurl + symbols[i].offset) = fn;
  }
  lib = handle;
  return NULL;
}
