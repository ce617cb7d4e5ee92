/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ioctl of the nvidia-like double's char device (/dev/nvidiaN), shared with
 * the guest helper tests/vm/nv_query.c. NV_IOCTL_MAGIC is 'F' in NVIDIA's
 * kernel-open/common/inc/nv-ioctl-numbers.h; the number is the double's own.
 */
#ifndef PTD_UAPI_H
#define PTD_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

struct ptd_nv_query {
	__u32 dirty;	/* 1 while the GPU carries a VM's state */
	__u32 pwm;	/* fan duty, 0..255 */
	__u32 rpm;	/* fan speed */
	__u32 minor;	/* N of /dev/nvidiaN */
};

#define PTD_NV_IOCTL_QUERY _IOR('F', 0xd0, struct ptd_nv_query)

#endif
