// pt-vm-nvquery: the guest's nvidia-smi stand-in for the nvidia-like driver
// double (tests/vm/doubles/ptd_nvidia.c). It opens /dev/nvidiaN and asks the
// driver for the GPU's state with one ioctl, which blocks while the GPU is
// dirty, as nvidia-smi hangs on a GPU a VM left behind. Run it under
// `timeout` to assert the hang.
//
//   pt-vm-nvquery /dev/nvidiaN
//
// Prints "dirty=0 pwm=N rpm=N minor=N" and exits 0; 2 on bad input (not a
// character device, not the double's node); 1 when the ioctl fails.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "doubles/ptd_uapi.h"

int main(int argc, char** argv) {
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: pt-vm-nvquery /dev/nvidiaN\n");
    return 2;
  }
  const char* path = argv[1];
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "pt-vm-nvquery: %s: %s (is the nvidia double bound? see /proc/driver/nvidia/gpus)\n", path,
            strerror(errno));
    return 2;
  }
  if (!S_ISCHR(st.st_mode)) {
    fprintf(stderr, "pt-vm-nvquery: %s is not a character device\n", path);
    return 2;
  }
  int fd = open(path, O_RDWR);
  if (fd < 0) {
    fprintf(stderr, "pt-vm-nvquery: cannot open %s: %s\n", path, strerror(errno));
    return 2;
  }
  struct ptd_nv_query q;
  memset(&q, 0, sizeof q);
  if (ioctl(fd, PTD_NV_IOCTL_QUERY, &q) != 0) {
    int e = errno;
    if (e == ENOTTY || e == EINVAL) {
      fprintf(stderr, "pt-vm-nvquery: %s does not answer the nvidia double's query ioctl (%s): not its device\n",
              path, strerror(e));
      return 2;
    }
    fprintf(stderr, "pt-vm-nvquery: query on %s failed: %s\n", path, strerror(e));
    return 1;
  }
  printf("dirty=%u pwm=%u rpm=%u minor=%u\n", q.dirty, q.pwm, q.rpm, q.minor);
  close(fd);
  return 0;
}
