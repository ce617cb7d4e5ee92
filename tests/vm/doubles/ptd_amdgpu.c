// SPDX-License-Identifier: GPL-2.0
/*
 * ptd_amdgpu: a test double of amdgpu's VGA arbiter client for pt's VM
 * testbed. Its pci_driver is named "amdgpu" (the guest has no amdgpu
 * module); it binds only through driver_override (no ID table).
 *
 * What it copies from amdgpu (drivers/gpu/drm/amd/amdgpu/amdgpu_device.c):
 * amdgpu_device_init() registers a decode callback for a VGA-class function,
 * vga_client_register(adev->pdev, amdgpu_device_vga_set_decode), and
 * amdgpu_device_fini_sw() unregisters it (vga_client_unregister). With a
 * callback registered, the arbiter ignores "decodes" written by user space
 * (drivers/pci/vgaarb.c, __vga_set_legacy_decoding: "don't let userspace futz
 * with kernel driver decodes"), so pt-vgaarb cannot change them and must say
 * why. The callback answers like amdgpu_device_vga_set_decode(): legacy and
 * normal resources when it is the only VGA device, normal ones otherwise.
 * There is no DRM device here (amdgpu's fbdev/console side is not copied).
 */
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/version.h>
#include <linux/vgaarb.h>

static unsigned int ptd_amdgpu_decode(bool state)
{
	if (state)
		return VGA_RSRC_LEGACY_IO | VGA_RSRC_LEGACY_MEM | VGA_RSRC_NORMAL_IO |
		       VGA_RSRC_NORMAL_MEM;
	return VGA_RSRC_NORMAL_IO | VGA_RSRC_NORMAL_MEM;
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 15, 0)
static unsigned int amdgpu_device_vga_set_decode(struct pci_dev *pdev, bool state)
{
	return ptd_amdgpu_decode(state);
}
#else
static unsigned int amdgpu_device_vga_set_decode(void *cookie, bool state)
{
	return ptd_amdgpu_decode(state);
}
#endif

static int ptd_amdgpu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	int err = pci_enable_device(pdev);

	if (err)
		return err;
	if ((pdev->class >> 8) == PCI_CLASS_DISPLAY_VGA) {
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 15, 0)
		err = vga_client_register(pdev, amdgpu_device_vga_set_decode);
#else
		err = vga_client_register(pdev, pdev, NULL, amdgpu_device_vga_set_decode);
#endif
		if (err) {
			pci_disable_device(pdev);
			return err;
		}
	}
	dev_info(&pdev->dev, "ptd_amdgpu: bound; VGA decode callback registered\n");
	return 0;
}

static void ptd_amdgpu_remove(struct pci_dev *pdev)
{
	if ((pdev->class >> 8) == PCI_CLASS_DISPLAY_VGA) {
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 15, 0)
		vga_client_unregister(pdev);
#else
		vga_client_register(pdev, NULL, NULL, NULL);
#endif
	}
	pci_disable_device(pdev);
}

static const struct pci_device_id ptd_amdgpu_ids[] = { { 0 } };

static struct pci_driver ptd_amdgpu_driver = {
	.name = "amdgpu",
	.id_table = ptd_amdgpu_ids,
	.probe = ptd_amdgpu_probe,
	.remove = ptd_amdgpu_remove,
};
module_pci_driver(ptd_amdgpu_driver);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("pt test double of amdgpu's VGA decode callback");
