"""DIR/inventory.yml for ansible-playbook (architecture.md, "Inventory")."""

import os
import pwd
import sys

import yaml


def other_region(region):
    return "EU" if region == "US" else "US"


def host_vars(instance, ca_path, cloud_ports=None):
    creds = instance.credentials()["owner"]
    fault = instance.spec["cloud_endpoint_fault"]
    # wrong_region: the operator configures the other region than the one that issued the installation id.
    region = other_region(instance.spec["region"]) if fault == "wrong_region" else instance.spec["region"]
    values = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "billing_sync_install_dir": instance.paths.root,
        "billing_sync_server_url": instance.url,
        "billing_sync_region": region,
        "billing_sync_user": pwd.getpwuid(os.geteuid()).pw_name,
        "billing_sync_organization_id": instance.organization_id,
        "billing_sync_client_id": creds["client_id"],
        "billing_sync_client_secret": creds["client_secret"],
        "billing_sync_token": instance.inventory_token,
        # the simulator's docker stand-in in the host's own bin dir (a real host has docker on PATH)
        "billing_sync_docker_command": instance.docker_command,
        # the address its cloud calls leave from (fleet key egress), and this fleet's own cloud call budgets
        "billing_sync_egress": instance.egress,
        "billing_sync_pace_dir": os.path.join(os.path.dirname(ca_path), "pace"),
    }
    if instance.spec["tls"]:
        values["billing_sync_ca_path"] = ca_path
    if instance.deployment == "lite":
        values["billing_sync_deployment"] = "lite"  # billing_sync_install_dir is its compose dir
    if cloud_ports is not None:
        # The test-only endpoint override of the cloud preflight: the served clouds instead of the region's hosts, both
        # regions, so that the region the run asks for picks its cloud as DNS would (the host's egress faults hit both).
        values["billing_sync_preflight_endpoints"] = {
            cloud: {service: cloud_ports.base_uri(cloud, service, None if fault == "wrong_region" else fault, instance.egress)
                    for service in ("identity", "api")} for cloud in ("US", "EU")}
        values["billing_sync_preflight_ca_path"] = ca_path
    return values


def write_inventory(path, instances, ca_path, cloud_ports=None):
    groups = {"bitwarden_us": {"hosts": {}}, "bitwarden_eu": {"hosts": {}}}
    for instance in instances:
        values = host_vars(instance, ca_path, cloud_ports)
        groups[f"bitwarden_{values['billing_sync_region'].lower()}"]["hosts"][instance.name] = values
    for group in groups.values():
        if not group["hosts"]:
            group["hosts"] = None
    document = {"all": {"children": {"bitwarden": {"children": groups}}}}
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("---\n# Written by bwsim up; holds test credentials for the simulated fleet.\n")
        yaml.dump(document, handle, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), default_flow_style=False, sort_keys=False)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
