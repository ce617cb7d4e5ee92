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
 * azx_probe -> azx_probe_continue -> azx_probe_codecs) finds no codec
 * answering on a controller a VM left running ("no codecs found!") and the
 * card is not created; a second try after the controller reset works. Here:
 * a VM left the controller programmed when the CORB base address (CORBLBASE,
 * BAR0 + 0x40) is not 0; the VM stand-in (pt-vm-standin --dirty) writes it
 * through VFIO. vfio-pci does not reset this function on release (it has no
 * reset method of its own; measured in cycle-order). The probe then:
 *   - logs why, resets the controller as azx_reset() does (GCTL.CRST to 0
 *     and back to 1; QEMU clears every controller register on it) and fails
 *     with -EIO: the function stays unbound;
 *   - the next probe finds CORBLBASE 0 and binds.
 * A bus reset of the slot (pt-reset --method bus) clears CORBLBASE as well,
 * so after pt's recipe the first probe binds. On remove the double resets
 * the controller, as azx_free -> azx_stop_chip leaves it stopped.
 */
#include <linux/delay.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/pci.h>

#define HDA_GCTL 0x08
#define HDA_GCTL_CRST 0x01
#define HDA_CORBLBASE 0x40

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

static int ptd_hda_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	void __iomem *bar;
	u32 corb;
	int err;

	err = pci_enable_device(pdev);
	if (err)
		return err;
	bar = pci_iomap(pdev, 0, 0);
	if (!bar) {
		pci_disable_device(pdev);
		return -ENOMEM;
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
