/* pt-vt-hold TTY: puts TTY (a virtual terminal, /dev/ttyN) in VT_PROCESS
 * mode and never acknowledges a release request, so a switch away from it
 * stays pending while this process lives: the kernel's own way for a
 * switch to take forever, used to prove pt-console vt's timeout. Prints
 * "ready" once the mode is set. Guest helper for the VM scenarios. */
#include <fcntl.h>
#include <linux/vt.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: pt-vt-hold /dev/ttyN\n");
    return 2;
  }
  int fd = open(argv[1], O_RDWR | O_NOCTTY);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  /* The release signal is delivered and ignored: no VT_RELDISP ever follows. */
  signal(SIGUSR1, SIG_IGN);
  signal(SIGUSR2, SIG_IGN);
  struct vt_mode mode = {.mode = VT_PROCESS, .relsig = SIGUSR1, .acqsig = SIGUSR2};
  if (ioctl(fd, VT_SETMODE, &mode) != 0) {
    perror("VT_SETMODE");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
