/* lock: see lock.h. */
#include "block/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define PERM_BASE 100
#define SHARED_BASE 200

static const char *const perm_names[LOCK_PERM_COUNT] = {
    "consistent read", "write", "write unchanged", "resize",
};

struct lock_set lock_set_for(bool write, bool share)
{
    struct lock_set s = { 1u << LOCK_PERM_CONSISTENT_READ, 0 };
    if (write)
        s.perms |= 1u << LOCK_PERM_WRITE | 1u << LOCK_PERM_WRITE_UNCHANGED |
                   1u << LOCK_PERM_RESIZE;
    if (!share)
        s.unshared = 1u << LOCK_PERM_WRITE | 1u << LOCK_PERM_RESIZE;
    return s;
}

static int byte_lock(int fd, int off, short type)
{
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = off;
    fl.l_len = 1;
    return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* Is byte `off` locked by another open file description? */
static int byte_held_elsewhere(int fd, int off)
{
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = off;
    fl.l_len = 1;
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return -errno;
    return fl.l_type != F_UNLCK;
}

struct lock_set lock_set_node(bool write, bool resize, bool format_meta,
                              bool share)
{
    struct lock_set s = { 1u << LOCK_PERM_CONSISTENT_READ, 0 };
    if (write) {
        s.perms |= 1u << LOCK_PERM_WRITE;
        if (resize || format_meta)
            s.perms |= 1u << LOCK_PERM_RESIZE;
    }
    if (format_meta && !share)
        s.unshared = 1u << LOCK_PERM_WRITE | 1u << LOCK_PERM_RESIZE;
    return s;
}

static int conflict(const char *what, int i, const char *filename,
                    struct err *err)
{
    return err_set(err, -EAGAIN,
                   "Failed to get %s\"%s\" lock\n"
                   "Is another process using the image [%s]?",
                   what, perm_names[i], filename);
}

int lock_apply(int fd, const char *filename, struct lock_set set,
               struct err *err)
{
    for (int i = 0; i < LOCK_PERM_COUNT; i++) {
        if (set.perms & (1u << i)) {
            int r = byte_held_elsewhere(fd, SHARED_BASE + i);
            if (r > 0)
                return conflict("", i, filename, err);
        }
    }
    for (int i = 0; i < LOCK_PERM_COUNT; i++) {
        if (set.unshared & (1u << i)) {
            int r = byte_held_elsewhere(fd, PERM_BASE + i);
            if (r > 0)
                return conflict("shared ", i, filename, err);
        }
    }
    for (int i = 0; i < LOCK_PERM_COUNT; i++) {
        int r = 0, off = PERM_BASE + i;
        if (set.perms & (1u << i))
            r = byte_lock(fd, off, F_RDLCK);
        if (r == 0 && (set.unshared & (1u << i)))
            r = byte_lock(fd, off = SHARED_BASE + i, F_RDLCK);
        if (r == -EAGAIN || r == -EACCES)
            return err_set(err, -EAGAIN,
                           "Failed to lock byte %d\n"
                           "Is another process using the image [%s]?",
                           off, filename);
        if (r < 0 && r != -EINVAL && r != -ENOTSUP)
            return err_set_errno(err, r, "Failed to lock byte %d", off);
    }
    return 0;
}
