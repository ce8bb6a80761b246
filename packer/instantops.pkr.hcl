# The instantops ops box as an AMI (amazon-ebs) and as a local disk image and
# Vagrant box (qemu), both provisioned by scripts/provision.sh.
#
#   cargo build --release && objcopy --strip-debug \
#     ~/.cache/instantops-target/release/instantops /tmp/instantops-bin
#   packer build -var binary=/tmp/instantops-bin -var region=eu-west-1 \
#     -only=amazon-ebs.debian packer/instantops.pkr.hcl
#   packer build -var binary=/tmp/instantops-bin -only=qemu.debian packer/instantops.pkr.hcl
#
# Checked with Debian's packer 1.6.6 (`packer validate`), which takes no
# required_plugins block.

packer {
  required_version = ">= 1.6.6"
}

variable "binary" {
  type        = string
  description = "The instantops binary to install (cargo build --release; strip it to save ~500 MB)."
}

variable "version" {
  type    = string
  default = "0.1.0"
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "instance_type" {
  type        = string
  default     = "t3.large"
  description = "The build instance; the AMI runs on any x86_64 type."
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Build in this subnet (empty: the default VPC)."
}

variable "root_volume_size" {
  type    = number
  default = 16
}

variable "data_volume_size" {
  type        = number
  default     = 100
  description = "GiB of the EBS data volume the AMI maps at /dev/xvdf; formatted and mounted at /var/lib/instantops on first boot."
}

variable "tags" {
  type = map(string)
  default = {
    Project = "instantops"
  }
}

variable "debian_cloud_image" {
  type    = string
  default = "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2"
}

variable "debian_cloud_checksum" {
  type        = string
  default     = ""
  description = "sha512:<hex> of debian_cloud_image; empty: looked up in debian_cloud_sums when the build starts (which needs the network)."
}

variable "debian_cloud_sums" {
  type    = string
  default = "https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS"
}

locals {
  stamp = formatdate("YYYYMMDD-hhmm", timestamp())
  name  = "instantops-${var.version}-${local.stamp}"
}

source "amazon-ebs" "debian" {
  region        = var.region
  instance_type = var.instance_type
  subnet_id     = var.subnet_id
  ami_name      = local.name
  ssh_username  = "admin"

  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    # Debian's own account for its official AMIs.
    owners      = ["136693071363"]
    most_recent = true
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.root_volume_size
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    delete_on_termination = true
  }

  ami_block_device_mappings {
    device_name           = "/dev/xvdf"
    volume_size           = var.data_volume_size
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    delete_on_termination = false
  }

  tags          = merge(var.tags, { Name = local.name, Version = var.version })
  snapshot_tags = merge(var.tags, { Name = local.name })
  run_tags      = merge(var.tags, { Name = "packer-${local.name}" })
}

source "qemu" "debian" {
  iso_url          = var.debian_cloud_image
  iso_checksum     = var.debian_cloud_checksum != "" ? var.debian_cloud_checksum : "file:${var.debian_cloud_sums}"
  disk_image       = true
  disk_size        = "16G"
  format           = "qcow2"
  accelerator      = "kvm"
  headless         = true
  memory           = 3072
  cpus             = 2
  vm_name          = "${local.name}.qcow2"
  output_directory = "output/${local.name}"
  # cloud-init's NoCloud seed from packer's HTTP server: a `packer` user for SSH.
  http_directory   = "${path.root}/http"
  qemuargs         = [["-smbios", "type=1,serial=ds=nocloud-net;s=http://{{ .HTTPIP }}:{{ .HTTPPort }}/"]]
  ssh_username     = "packer"
  ssh_password     = "packer"
  ssh_timeout      = "20m"
  shutdown_command = "sudo shutdown -P now"
}

build {
  sources = ["source.amazon-ebs.debian", "source.qemu.debian"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/instantops"]
  }

  provisioner "file" {
    source      = var.binary
    destination = "/tmp/instantops/instantops"
  }

  provisioner "file" {
    source      = "${path.root}/../config/appliance.toml"
    destination = "/tmp/instantops/appliance.toml"
  }

  provisioner "file" {
    source      = "${path.root}/instantops.service"
    destination = "/tmp/instantops/instantops.service"
  }

  provisioner "file" {
    source      = "${path.root}/instantops-data.service"
    destination = "/tmp/instantops/instantops-data.service"
  }

  provisioner "file" {
    source      = "${path.root}/scripts/prepare-data.sh"
    destination = "/tmp/instantops/prepare-data.sh"
  }

  provisioner "shell" {
    script           = "${path.root}/scripts/provision.sh"
    environment_vars = ["INSTANTOPS_STAGE=/tmp/instantops"]
    execute_command  = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
  }

  # The user SSH came in with is the build's, not the box's.
  provisioner "shell" {
    only   = ["qemu.debian"]
    inline = ["sudo rm -rf /tmp/instantops", "sudo cloud-init clean --logs || true"]
  }

  post-processor "vagrant" {
    only                 = ["qemu.debian"]
    output               = "output/instantops-${var.version}-{{ .Provider }}.box"
    vagrantfile_template = "${path.root}/../vagrant/box.Vagrantfile"
    include              = ["${path.root}/../vagrant/ports.rb"]
  }
}
