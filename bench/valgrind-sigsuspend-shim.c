/*
 * LD_PRELOAD shim used only when bench/run.sh runs weft-proxy under callgrind.
 *
 * Valgrind 3.19 (Debian 12) rewrites the signal mask passed to sigsuspend()
 * in place.  libdispatch's main thread (dispatchMain -> _dispatch_sig_thread)
 * passes a mask that lives in read-only memory, so Valgrind dies with an
 * internal SIGSEGV before the proxy even starts.  Passing a writable copy
 * changes nothing for the program: sigsuspend() only reads the mask.
 *
 * Build: cc -shared -fPIC -O2 -o shim.so valgrind-sigsuspend-shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>

int sigsuspend(const sigset_t *mask)
{
    static int (*real)(const sigset_t *);
    sigset_t copy = *mask;
    if (!real)
        real = (int (*)(const sigset_t *))dlsym(RTLD_NEXT, "sigsuspend");
    return real(&copy);
}
