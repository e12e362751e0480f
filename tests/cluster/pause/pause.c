/* The pod sandbox ("pause") process of the local cluster harness.
 *
 * It holds the pod's namespaces open and does nothing else. As PID 1 of a pod that shares
 * its process namespace it must reap orphaned children, and it must stop promptly on
 * SIGTERM/SIGINT. Signals are blocked and taken synchronously with sigwaitinfo(), so there
 * are no handlers and no races; a PID-1 process would otherwise ignore default-action
 * signals. Build: gcc -static -O2 -o pause pause.c
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    puts("agenttype-pause 1.0");
    return 0;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
    perror("sigprocmask");
    return 1;
  }
  for (;;) {
    int sig = sigwaitinfo(&set, NULL);
    if (sig < 0) {
      if (errno == EINTR) continue;
      perror("sigwaitinfo");
      return 1;
    }
    if (sig == SIGCHLD) {
      while (waitpid(-1, NULL, WNOHANG) > 0) {}
      continue;
    }
    fprintf(stderr, "pause: signal %d, exiting\n", sig);
    return 0;
  }
}
