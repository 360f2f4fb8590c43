/*
** ckfb.core.file: the file operations state needs to be trusted: lstat, an
** atomic write that never follows a link, and a flock(2) lock the kernel
** releases when its holder dies.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ckfb.h"

#define LOCK_META "ckfb.FileLock"


static int push_failure (lua_State *L, const char *what, int err) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(err));
  return 2;
}


/* file.stat(path) -> {type, uid, mode} of the path itself (links not followed) | nil, message */
static int file_stat (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (lstat(path, &st) != 0)
    return push_failure(L, path, errno);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory"
                    : S_ISLNK(st.st_mode) ? "link" : "other");
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)st.st_uid);
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
  lua_setfield(L, -2, "mode");
  return 1;
}


/* file.mkstemp(dir, prefix) -> the path of a new empty file only its owner can
** read (0600, made with O_EXCL) | nil, message */
static int file_mkstemp (lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  const char *prefix = luaL_checkstring(L, 2);
  luaL_argcheck(L, strchr(prefix, '/') == NULL, 2, "a prefix, not a path");
  size_t size = strlen(dir) + strlen(prefix) + sizeof "/XXXXXX";
  char *path = malloc(size);
  if (path == NULL)
    return luaL_error(L, "not enough memory");
  snprintf(path, size, "%s/%sXXXXXX", dir, prefix);
  int fd = mkstemp(path);
  int err = errno;
  if (fd >= 0)
    close(fd);
  if (fd >= 0)
    lua_pushstring(L, path);  /* may raise on memory: `path` would leak, once */
  free(path);
  if (fd >= 0)
    return 1;
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", dir, strerror(err));
  return 2;
}


/* file.getuid() -> this process's real user id */
static int file_getuid (lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getuid());
  return 1;
}


static int write_all (int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}


/* file.write_atomic(path, text [, mode]) -> true | nil, message: a new file
** beside path (O_EXCL: never a link), written whole, fsynced, then renamed
** over path. A full disk or a crash leaves the old file, never half a new one. */
static int file_write_atomic (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *text = luaL_checklstring(L, 2, &len);
  mode_t mode = (mode_t)luaL_optinteger(L, 3, 0600);
  size_t size = strlen(path) + sizeof ".tmp-XXXXXX";
  char *tmp = malloc(size);
  if (tmp == NULL)
    return luaL_error(L, "not enough memory");
  snprintf(tmp, size, "%s.tmp-XXXXXX", path);
  int fd = mkstemp(tmp);
  int err = errno;
  if (fd >= 0) {
    if (fchmod(fd, mode) != 0 || write_all(fd, text, len) != 0 || fsync(fd) != 0)
      err = errno;
    else
      err = 0;
    if (close(fd) != 0 && err == 0)
      err = errno;
    if (err == 0 && rename(tmp, path) != 0)
      err = errno;
    if (err != 0)
      unlink(tmp);
  }
  free(tmp);
  if (err != 0)
    return push_failure(L, path, err);
  lua_pushboolean(L, 1);
  return 1;
}


typedef struct { int fd; } file_lock;


static int lock_release (lua_State *L) {
  file_lock *lk = luaL_checkudata(L, 1, LOCK_META);
  if (lk->fd >= 0) {
    close(lk->fd);  /* closing the descriptor releases the flock */
    lk->fd = -1;
  }
  return 0;
}


/* file.lock(path) -> lock | nil, message, "held" | "other": an exclusive,
** non-blocking flock(2) on path (made 0600, never through a link). The
** kernel releases it when the lock is released, collected, or its process
** dies; lock:write(text) records who holds it. */
static int file_lock_open (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  file_lock *lk = lua_newuserdatauv(L, sizeof *lk, 0);
  lk->fd = -1;
  luaL_setmetatable(L, LOCK_META);
  int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return push_failure(L, path, errno);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(fd);
    push_failure(L, path, err);
    lua_pushstring(L, err == EWOULDBLOCK ? "held" : "other");
    return 3;
  }
  lk->fd = fd;
  return 1;
}


/* lock:write(text): replaces the lock file's contents (who holds it) */
static int lock_write (lua_State *L) {
  file_lock *lk = luaL_checkudata(L, 1, LOCK_META);
  size_t len;
  const char *text = luaL_checklstring(L, 2, &len);
  luaL_argcheck(L, lk->fd >= 0, 1, "the lock is released");
  if (ftruncate(lk->fd, 0) != 0 || lseek(lk->fd, 0, SEEK_SET) != 0 || write_all(lk->fd, text, len) != 0)
    return push_failure(L, "lock", errno);
  lua_pushboolean(L, 1);
  return 1;
}


static const luaL_Reg lock_methods[] = {
  {"release", lock_release},
  {"write", lock_write},
  {NULL, NULL}
};


static const luaL_Reg file_funcs[] = {
  {"stat", file_stat},
  {"getuid", file_getuid},
  {"mkstemp", file_mkstemp},
  {"write_atomic", file_write_atomic},
  {"lock", file_lock_open},
  {NULL, NULL}
};


int luaopen_ckfb_core_file (lua_State *L) {
  if (luaL_newmetatable(L, LOCK_META)) {
    luaL_newlib(L, lock_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  luaL_newlib(L, file_funcs);
  return 1;
}
