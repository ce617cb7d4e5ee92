// SPDX-License-Identifier: GPL-2.0
/*
 * ptd_vfio_variant: a test double of a VFIO variant driver (mlx5_vfio_pci,
 * hisi_acc_vfio_pci, pds_vfio_pci ...) for the SR-IOV VFs of QEMU's NVMe
 * controller (1b36:0010), so that pt-bind vfs can be shown to bind VFs to
 * the variant driver modules.alias names.
 *
 * A real variant driver lists PCI_DRIVER_OVERRIDE_DEVICE_VFIO ids (5.16 and
 * later): modpost writes them as "vfio_pci:v…d…sv…sd…bc…sc…i…" aliases,
 * and pci_match_device() matches them only through driver_override, so the
 * driver never binds on its own. The double says the same in a way 5.10
 * compiles too: the alias by hand, and an ID table with no entry, so it
 * binds nothing but what driver_override names (pci_match_device() returns
 * its dummy pci_device_id_any for an override match in 5.10 and since).
 *
 * Its pci_driver is named "ptd-vfio-variant", unlike its module
 * (ptd_vfio_variant), as nvgrace_gpu_vfio_pci registers
 * "nvgrace-gpu-vfio-pci": pt must take the driver's name from
 * /sys/module/MODULE/drivers, not from the module's. Probe enables the
 * function and claims nothing else; remove disables it.
 */
#include <linux/module.h>
#include <linux/pci.h>

static unsigned int probes;
module_param(probes, uint, 0444);
MODULE_PARM_DESC(probes, "functions bound so far (read only)");

static const struct pci_device_id ptd_vfio_variant_ids[] = {{
    0,
}};

static int ptd_vfio_variant_probe(struct pci_dev* pdev, const struct pci_device_id* id) {
  int ret = pci_enable_device(pdev);

  if (ret) return ret;
  probes++;
  dev_info(&pdev->dev, "ptd-vfio-variant: bound (%04x:%04x)\n", pdev->vendor, pdev->device);
  return 0;
}

static void ptd_vfio_variant_remove(struct pci_dev* pdev) {
  pci_disable_device(pdev);
}

static struct pci_driver ptd_vfio_variant_driver = {
    .name = "ptd-vfio-variant",
    .id_table = ptd_vfio_variant_ids,
    .probe = ptd_vfio_variant_probe,
    .remove = ptd_vfio_variant_remove,
};

module_pci_driver(ptd_vfio_variant_driver);

MODULE_ALIAS("vfio_pci:v00001B36d00000010sv*sd*bc*sc*i*");
MODULE_DESCRIPTION("pt test double of a VFIO variant driver for QEMU NVMe VFs");
MODULE_LICENSE("GPL");
