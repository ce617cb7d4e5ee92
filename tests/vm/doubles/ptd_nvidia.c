// SPDX-License-Identifier: GPL-2.0
/*
 * ptd_nvidia: a test double of NVIDIA's GPU driver for pt's VM testbed.
 *
 * Its pci_driver is named "nvidia", so /sys/bus/pci/drivers/nvidia is what
 * pt sees and pt's nvidia paths run (src/pt/holders.cpp: the minor from
 * /proc/driver/nvidia/gpus/BDF/information, /dev/nvidiaN). It binds only
 * through driver_override (it has no ID table), to the testbed's virtio-vga
 * function. What it copies from NVIDIA's open-gpu-kernel-modules,
 * kernel-open/nvidia/nv-pci.c and nv.c:
 *
 *  - nv_pci_probe() calls vga_set_legacy_decoding(pci_dev, VGA_RSRC_NONE)
 *    on every probe and registers no VGA decode callback
 *    (vga_client_register is never called), so the arbiter logs
 *    "VGA decodes changed: olddecodes=io+mem,decodes=none" when the GPU comes
 *    back from vfio-pci, and userspace may write decodes afterwards.
 *  - A char device per GPU, /dev/nvidiaN, and
 *    /proc/driver/nvidia/gpus/BDF/information with a "Device Minor:" line
 *    (nv-procfs.c). The real driver's nodes are made by nvidia-modprobe;
 *    here devtmpfs makes /dev/nvidiaN (device_create, no parent: there is no
 *    sysfs link from the PCI device to the minor, as with the real driver).
 *  - nv_pci_remove() with the device open prints "Attempting to remove
 *    device ... with non-zero usage count!" and loops on os_delay(500)
 *    until the usage count drops: remove(), and so a sysfs unbind, blocks
 *    uninterruptibly while a process holds /dev/nvidiaN. Same here (msleep).
 *
 * The "dirty GPU": the state a VM leaves in a GeForce, which has no FLR and
 * which vfio-pci therefore cannot clean up on release, and which only a bus
 * reset clears. Here the state lives in the device itself: virtio's
 * device_status byte (offset 0x14 of the modern common configuration, found
 * from the vendor capability with cfg_type 1). The VM stand-in
 * (pt-vm-standin --dirty) writes it through VFIO; an FLR or a secondary bus
 * reset clears it in QEMU; a D3hot->D0 cycle (vfio-pci's pm reset of a
 * function without FLR) does not. The doubles topology gives virtio-vga no
 * FLR (x-pcie-flr-init=off), like a GeForce. Dirty means device_status != 0,
 * read live each time, so only a real reset of the device clears it. While
 * dirty:
 *  - the ioctl PTD_NV_IOCTL_QUERY blocks (what nvidia-smi does on a GPU the
 *    driver cannot talk to); interruptibly, so `timeout` can end it;
 *  - hwmon pwm1 reads 255 and fan1_input 3300 rpm: the fan at full speed.
 *    (The real driver has no hwmon device; nvidia-smi reports the fan.)
 */
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/hwmon.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/vgaarb.h>

#include "ptd_uapi.h"

#define PTD_NV_NAME "nvidia"
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_COMMON_STATUS 0x14

/* Fan readings: full speed while dirty, the origin story's 39% otherwise. */
#define PWM_DIRTY 255
#define PWM_CLEAN 100
#define RPM_DIRTY 3300
#define RPM_CLEAN 1290

struct ptd_nv {
	struct pci_dev *pdev;
	void __iomem *common;	/* virtio common configuration */
	atomic_t usage;		/* opens of /dev/nvidiaN (nvl->usage_count) */
	int minor;
	struct device *node;
	struct device *hwmon;
	struct proc_dir_entry *proc_gpu;
};

static int ptd_nv_major;
static struct class *ptd_nv_class;
static struct proc_dir_entry *proc_nvidia;
static struct proc_dir_entry *proc_gpus;
static struct ptd_nv *gpus[8];
static DEFINE_MUTEX(gpus_lock);

static bool ptd_nv_dirty(struct ptd_nv *nv)
{
	return ioread8(nv->common + VIRTIO_COMMON_STATUS) != 0;
}

/* ------------------------------------------------------------ char device */
static int ptd_nv_open(struct inode *inode, struct file *file)
{
	struct ptd_nv *nv;
	unsigned int m = iminor(inode);

	mutex_lock(&gpus_lock);
	nv = m < ARRAY_SIZE(gpus) ? gpus[m] : NULL;
	if (nv)
		atomic_inc(&nv->usage);
	mutex_unlock(&gpus_lock);
	if (!nv)
		return -ENODEV;
	file->private_data = nv;
	return 0;
}

static int ptd_nv_release(struct inode *inode, struct file *file)
{
	struct ptd_nv *nv = file->private_data;

	atomic_dec(&nv->usage);
	return 0;
}

/*
 * nvidia-smi on a GPU the driver lost: the RM call never returns. Here it
 * waits while the GPU is dirty, checking every 100 ms, and gives up on a
 * signal so the scenario's `timeout` can end it.
 */
static long ptd_nv_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct ptd_nv *nv = file->private_data;
	struct ptd_nv_query q = { 0 };
	bool logged = false;

	if (cmd != PTD_NV_IOCTL_QUERY)
		return -ENOTTY;
	while (ptd_nv_dirty(nv)) {
		if (!logged) {
			dev_warn(&nv->pdev->dev, "ptd_nvidia: query waits: the GPU holds a VM's state (device_status 0x%02x); only a reset clears it\n",
				 ioread8(nv->common + VIRTIO_COMMON_STATUS));
			logged = true;
		}
		if (msleep_interruptible(100))
			return -ERESTARTSYS;
	}
	q.dirty = 0;
	q.pwm = PWM_CLEAN;
	q.rpm = RPM_CLEAN;
	q.minor = nv->minor;
	if (copy_to_user((void __user *)arg, &q, sizeof(q)))
		return -EFAULT;
	return 0;
}

static const struct file_operations ptd_nv_fops = {
	.owner = THIS_MODULE,
	.open = ptd_nv_open,
	.release = ptd_nv_release,
	.unlocked_ioctl = ptd_nv_ioctl,
	.compat_ioctl = ptd_nv_ioctl,
	.llseek = noop_llseek,
};

/* ------------------------------------------------------------------ hwmon */
static umode_t ptd_nv_hwmon_visible(const void *data, enum hwmon_sensor_types type, u32 attr,
				    int channel)
{
	return 0444;
}

static int ptd_nv_hwmon_read(struct device *dev, enum hwmon_sensor_types type, u32 attr,
			     int channel, long *val)
{
	struct ptd_nv *nv = dev_get_drvdata(dev);
	bool dirty = ptd_nv_dirty(nv);

	if (type == hwmon_pwm && attr == hwmon_pwm_input)
		*val = dirty ? PWM_DIRTY : PWM_CLEAN;
	else if (type == hwmon_fan && attr == hwmon_fan_input)
		*val = dirty ? RPM_DIRTY : RPM_CLEAN;
	else
		return -EOPNOTSUPP;
	return 0;
}

static const struct hwmon_ops ptd_nv_hwmon_ops = {
	.is_visible = ptd_nv_hwmon_visible,
	.read = ptd_nv_hwmon_read,
};

static const struct hwmon_channel_info *ptd_nv_hwmon_info[] = {
	HWMON_CHANNEL_INFO(pwm, HWMON_PWM_INPUT),
	HWMON_CHANNEL_INFO(fan, HWMON_F_INPUT),
	NULL
};

static const struct hwmon_chip_info ptd_nv_chip = {
	.ops = &ptd_nv_hwmon_ops,
	.info = ptd_nv_hwmon_info,
};

/* ---------------------------------------------------- sysfs (test reads) */
static ssize_t ptd_dirty_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct ptd_nv *nv = pci_get_drvdata(to_pci_dev(dev));

	return sprintf(buf, "%d\n", nv && ptd_nv_dirty(nv));
}
static DEVICE_ATTR_RO(ptd_dirty);

static ssize_t ptd_usage_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct ptd_nv *nv = pci_get_drvdata(to_pci_dev(dev));

	return sprintf(buf, "%d\n", nv ? atomic_read(&nv->usage) : 0);
}
static DEVICE_ATTR_RO(ptd_usage);

/* ------------------------------------------------------------------ procfs */
static int ptd_nv_info_show(struct seq_file *m, void *v)
{
	struct ptd_nv *nv = m->private;

	/* The fields of nv-procfs.c's nv_procfs_read_gpu_info that pt reads. */
	seq_printf(m, "Model: \t\t PT test double (virtio-vga)\n");
	seq_printf(m, "IRQ:   \t\t %d\n", nv->pdev->irq);
	seq_printf(m, "Bus Type: \t PCIe\n");
	seq_printf(m, "Device Minor: \t %d\n", nv->minor);
	return 0;
}

/* --------------------------------------------------------------- PCI side */
static void __iomem *map_virtio_common(struct pci_dev *pdev)
{
	int pos;

	for (pos = pci_find_capability(pdev, PCI_CAP_ID_VNDR); pos;
	     pos = pci_find_next_capability(pdev, pos, PCI_CAP_ID_VNDR)) {
		u8 type, bar;
		u32 offset;

		pci_read_config_byte(pdev, pos + 3, &type);
		if (type != VIRTIO_PCI_CAP_COMMON_CFG)
			continue;
		pci_read_config_byte(pdev, pos + 4, &bar);
		pci_read_config_dword(pdev, pos + 8, &offset);
		return pci_iomap_range(pdev, bar, offset, 0x38);
	}
	return NULL;
}

static int nv_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct ptd_nv *nv;
	char bdf[32];
	int err, minor;

	nv = devm_kzalloc(&pdev->dev, sizeof(*nv), GFP_KERNEL);
	if (!nv)
		return -ENOMEM;
	nv->pdev = pdev;
	atomic_set(&nv->usage, 0);
	err = pci_enable_device(pdev);
	if (err)
		return err;
	nv->common = map_virtio_common(pdev);
	if (!nv->common) {
		dev_err(&pdev->dev, "ptd_nvidia: no virtio common configuration to keep the GPU's state in\n");
		err = -ENODEV;
		goto disable;
	}
	pci_set_master(pdev);
	/* nv-pci.c nv_pci_probe(): no decode callback, legacy decoding off. */
	vga_set_legacy_decoding(pdev, VGA_RSRC_NONE);

	mutex_lock(&gpus_lock);
	for (minor = 0; minor < ARRAY_SIZE(gpus) && gpus[minor]; minor++)
		;
	if (minor == ARRAY_SIZE(gpus)) {
		mutex_unlock(&gpus_lock);
		err = -ENOSPC;
		goto unmap;
	}
	nv->minor = minor;
	gpus[minor] = nv;
	mutex_unlock(&gpus_lock);
	pci_set_drvdata(pdev, nv);

	nv->node = device_create(ptd_nv_class, NULL, MKDEV(ptd_nv_major, minor), nv, "nvidia%d", minor);
	if (IS_ERR(nv->node)) {
		err = PTR_ERR(nv->node);
		goto unregister;
	}
	nv->hwmon = hwmon_device_register_with_info(&pdev->dev, "nvidia", nv, &ptd_nv_chip, NULL);
	if (IS_ERR(nv->hwmon)) {
		err = PTR_ERR(nv->hwmon);
		goto node;
	}
	snprintf(bdf, sizeof(bdf), "%s", pci_name(pdev));
	nv->proc_gpu = proc_mkdir(bdf, proc_gpus);
	if (nv->proc_gpu)
		proc_create_single_data("information", 0444, nv->proc_gpu, ptd_nv_info_show, nv);
	device_create_file(&pdev->dev, &dev_attr_ptd_dirty);
	device_create_file(&pdev->dev, &dev_attr_ptd_usage);
	dev_info(&pdev->dev, "ptd_nvidia: /dev/nvidia%d, GPU %s\n", minor,
		 ptd_nv_dirty(nv) ? "dirty (a VM's state; fan at full speed until a reset)" : "clean");
	return 0;

node:
	device_destroy(ptd_nv_class, MKDEV(ptd_nv_major, minor));
unregister:
	mutex_lock(&gpus_lock);
	gpus[minor] = NULL;
	mutex_unlock(&gpus_lock);
unmap:
	pci_iounmap(pdev, nv->common);
disable:
	pci_disable_device(pdev);
	return err;
}

static void nv_pci_remove(struct pci_dev *pdev)
{
	struct ptd_nv *nv = pci_get_drvdata(pdev);

	/*
	 * nv-pci.c nv_pci_remove(): "We can't return from this function without
	 * corrupting state, so we wait for the usage count to go to zero",
	 * os_delay(500) in a loop. No signal ends it.
	 */
	if (atomic_read(&nv->usage) != 0) {
		dev_err(&pdev->dev, "NVRM: Attempting to remove device %s with non-zero usage count!\n",
			pci_name(pdev));
		while (atomic_read(&nv->usage) != 0)
			msleep(500);
	}
	device_remove_file(&pdev->dev, &dev_attr_ptd_usage);
	device_remove_file(&pdev->dev, &dev_attr_ptd_dirty);
	proc_remove(nv->proc_gpu);
	hwmon_device_unregister(nv->hwmon);
	device_destroy(ptd_nv_class, MKDEV(ptd_nv_major, nv->minor));
	mutex_lock(&gpus_lock);
	gpus[nv->minor] = NULL;
	mutex_unlock(&gpus_lock);
	pci_iounmap(pdev, nv->common);
	pci_clear_master(pdev);
	pci_disable_device(pdev);
	/* Like nv_pci_remove, nothing gives the legacy VGA decoding back. */
}

/* No IDs: it binds only where driver_override names it. */
static const struct pci_device_id ptd_nv_ids[] = { { 0 } };

static struct pci_driver ptd_nv_driver = {
	.name = PTD_NV_NAME,
	.id_table = ptd_nv_ids,
	.probe = nv_pci_probe,
	.remove = nv_pci_remove,
};

static int __init ptd_nv_init(void)
{
	int err;

	ptd_nv_major = register_chrdev(0, "nvidia", &ptd_nv_fops);
	if (ptd_nv_major < 0)
		return ptd_nv_major;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	ptd_nv_class = class_create("ptd_nvidia");
#else
	ptd_nv_class = class_create(THIS_MODULE, "ptd_nvidia");
#endif
	if (IS_ERR(ptd_nv_class)) {
		err = PTR_ERR(ptd_nv_class);
		goto chrdev;
	}
	proc_nvidia = proc_mkdir("driver/nvidia", NULL);
	proc_gpus = proc_nvidia ? proc_mkdir("gpus", proc_nvidia) : NULL;
	if (!proc_gpus) {
		err = -ENOMEM;
		goto proc;
	}
	err = pci_register_driver(&ptd_nv_driver);
	if (err)
		goto proc;
	return 0;
proc:
	proc_remove(proc_nvidia);
	class_destroy(ptd_nv_class);
chrdev:
	unregister_chrdev(ptd_nv_major, "nvidia");
	return err;
}

static void __exit ptd_nv_exit(void)
{
	pci_unregister_driver(&ptd_nv_driver);
	proc_remove(proc_nvidia);
	class_destroy(ptd_nv_class);
	unregister_chrdev(ptd_nv_major, "nvidia");
}

module_init(ptd_nv_init);
module_exit(ptd_nv_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("pt test double of the nvidia GPU driver (VGA decodes, remove(), dirty GPU)");
