// SPDX-License-Identifier: GPL-2.0
/*
 * ptd_hda: a test double of snd_hda_intel for the HDMI-audio function of
 * pt's VM testbed (QEMU's ich9-intel-hda). Its pci_driver is named
 * "ptd_hda_intel" (the guest also loads the real snd_hda_intel, whose name
 * it must not take); it binds through driver_override or, once the real
 * module is unloaded, through its ID table (8086:293e, like hda_intel.c's
 * azx_ids).
 *
 * The origin story: after a VM cycle the audio function "failed to bind"
 * back to snd_hda_intel. The real driver's probe (sound/pci/hda/hda_intel.c,
 * azx_probe -> azx_probe_continue -> azx_probe_codecs) fails with "no codecs
 * found!" when no codec answers on the link, and the card is not created.
 * On a GPU's HDMI-audio function the codec sits in the GPU's display engine
 * (hda_intel.c's quirks for NVIDIA and AMD HDMI controllers), so a GPU the
 * driver cannot talk to leaves its audio function without codecs. Two
 * conditions make the double's probe fail with -EIO ("no codecs found!"):
 *
 *  1. The GPU function of the same slot (function 0, the virtio-vga the
 *     nvidia double drives) holds a VM's state: virtio device_status != 0,
 *     as ptd_nvidia.c reads it. This lasts until a reset of the GPU, so the
 *     audio stays unbound after the admin's attach; after pt's recipe (bus
 *     reset of the slot first) it binds at the first probe.
 *  2. Its own controller was left programmed by its last user: CORBLBASE
 *     (BAR0 + 0x40) != 0 (pt-vm-standin --dirty writes it through VFIO).
 *     The failed probe resets the controller as azx_reset() does (GCTL.CRST
 *     to 0 and back; QEMU clears the controller's registers on it), so the
 *     next probe binds: it fails once. Measured on this testbed: vfio-pci
 *     resets the slot (secondary bus reset) when the last function of a VM
 *     that used this function closes, because this function has no reset
 *     of its own, so after a real VFIO user condition 2 never survives; it
 *     is reached by writing the register while the double is unbound.
 *
 * On remove the double resets the controller, as azx_free -> azx_stop_chip
 * leaves it stopped.
 */
#include <linux/delay.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/pci.h>

#define HDA_GCTL 0x08
#define HDA_GCTL_CRST 0x01
#define HDA_CORBLBASE 0x40
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_COMMON_STATUS 0x14

static unsigned int failed_probes;
module_param(failed_probes, uint, 0444);
MODULE_PARM_DESC(failed_probes, "probes that failed on a controller a VM left programmed (read only)");

static void ptd_hda_controller_reset(void __iomem *bar)
{
	u32 gctl = ioread32(bar + HDA_GCTL);

	iowrite32(gctl & ~HDA_GCTL_CRST, bar + HDA_GCTL);
	usleep_range(500, 1000);
	iowrite32(gctl | HDA_GCTL_CRST, bar + HDA_GCTL);
	usleep_range(500, 1000);
}

/*
 * device_status of the slot's GPU function when it is a virtio device with
 * memory decoding on (bound to a driver); 0 otherwise.
 */
static u8 gpu_state(struct pci_dev *pdev)
{
	struct pci_dev *gpu = pci_get_slot(pdev->bus, PCI_DEVFN(PCI_SLOT(pdev->devfn), 0));
	void __iomem *common = NULL;
	u16 cmd = 0;
	u8 status = 0;
	int pos;

	if (!gpu)
		return 0;
	pci_read_config_word(gpu, PCI_COMMAND, &cmd);
	if (gpu->vendor != 0x1af4 || !(cmd & PCI_COMMAND_MEMORY))
		goto out;
	for (pos = pci_find_capability(gpu, PCI_CAP_ID_VNDR); pos;
	     pos = pci_find_next_capability(gpu, pos, PCI_CAP_ID_VNDR)) {
		u8 type, bar;
		u32 offset;

		pci_read_config_byte(gpu, pos + 3, &type);
		if (type != VIRTIO_PCI_CAP_COMMON_CFG)
			continue;
		pci_read_config_byte(gpu, pos + 4, &bar);
		pci_read_config_dword(gpu, pos + 8, &offset);
		common = pci_iomap_range(gpu, bar, offset, 0x38);
		break;
	}
	if (common) {
		status = ioread8(common + VIRTIO_COMMON_STATUS);
		pci_iounmap(gpu, common);
		if (status == 0xff)	/* not answering: cannot tell */
			status = 0;
	}
out:
	pci_dev_put(gpu);
	return status;
}

static int ptd_hda_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	void __iomem *bar;
	u32 corb;
	u8 status;
	int err;

	err = pci_enable_device(pdev);
	if (err)
		return err;
	bar = pci_iomap(pdev, 0, 0);
	if (!bar) {
		pci_disable_device(pdev);
		return -ENOMEM;
	}
	status = gpu_state(pdev);
	if (status != 0) {
		failed_probes++;
		dev_err(&pdev->dev, "ptd_hda_intel: no codecs found! (azx_probe_codecs): the GPU function of this slot holds a VM's state (device_status 0x%02x); reset it\n",
			status);
		pci_iounmap(pdev, bar);
		pci_disable_device(pdev);
		return -EIO;
	}
	corb = ioread32(bar + HDA_CORBLBASE);
	if (corb != 0) {
		failed_probes++;
		dev_err(&pdev->dev, "ptd_hda_intel: controller left running by its last user (CORBLBASE 0x%08x): no codecs found! (azx_probe_codecs); resetting the controller\n",
			corb);
		ptd_hda_controller_reset(bar);
		pci_iounmap(pdev, bar);
		pci_disable_device(pdev);
		return -EIO;
	}
	pci_set_drvdata(pdev, bar);
	dev_info(&pdev->dev, "ptd_hda_intel: bound\n");
	return 0;
}

static void ptd_hda_remove(struct pci_dev *pdev)
{
	void __iomem *bar = pci_get_drvdata(pdev);

	ptd_hda_controller_reset(bar);
	pci_iounmap(pdev, bar);
	pci_disable_device(pdev);
}

static const struct pci_device_id ptd_hda_ids[] = {
	{ PCI_DEVICE(0x8086, 0x293e) },
	{ 0 }
};
MODULE_DEVICE_TABLE(pci, ptd_hda_ids);

static struct pci_driver ptd_hda_driver = {
	.name = "ptd_hda_intel",
	.id_table = ptd_hda_ids,
	.probe = ptd_hda_probe,
	.remove = ptd_hda_remove,
};
module_pci_driver(ptd_hda_driver);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("pt test double of snd_hda_intel: probe fails once after a VM cycle without a reset");
