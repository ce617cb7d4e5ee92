/* pt-vm-pty CMD [ARG...]: runs CMD with its standard error on a fresh
 * pseudo-terminal (stdin and stdout stay ours) and copies what the terminal
 * got to our standard output, raw, so a scenario can assert the progress
 * line a tool prints only on a terminal. Busybox has no script(1). Exits
 * with CMD's status. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: pt-vm-pty CMD [ARG...]\n");
    return 2;
  }
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
    perror("pt-vm-pty: posix_openpt");
    return 126;
  }
  const char* name = ptsname(master);
  pid_t pid = fork();
  if (pid < 0) {
    perror("pt-vm-pty: fork");
    return 126;
  }
  if (pid == 0) {
    setsid();
    int slave = open(name, O_RDWR);
    if (slave < 0 || dup2(slave, 2) < 0) _exit(126);
    if (slave > 2) close(slave);
    execvp(argv[1], argv + 1);
    _exit(127);
  }
  char buf[4096];
  for (;;) {
    ssize_t n = read(master, buf, sizeof buf);
    if (n > 0) {
      if (write(1, buf, (size_t)n) < 0) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break; /* EIO: the last holder of the terminal closed it */
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
