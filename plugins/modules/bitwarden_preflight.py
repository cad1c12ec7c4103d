#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bitwarden_preflight
short_description: Check, before turning on cloud communication, that a Bitwarden host can reach its region's cloud
version_added: 0.3.0
description:
  - Runs on the Bitwarden host and changes nothing. It checks what the server's license and billing sync need from the
    Bitwarden cloud, before the env file changes and the server restarts, so that a blocked egress or an installation of
    the other region is found while production is untouched.
  - For the region's identity and API endpoints (the URIs the server uses after the change, the same hosts the firewall
    guide lists), layer by layer, DNS, TCP, TLS (the system trust store) and HTTP. The identity endpoint gets the token
    request the server makes (C(grant_type=client_credentials), C(scope=api.licensing),
    C(client_id=installation.<installation id>), the installation key), so an installation id that the region's cloud
    does not know (C(invalid_client), a US id on an EU configuration or the reverse) is caught too. The API endpoint
    gets C(GET /alive).
  - The installation id and key come from the env file. The key and the token never appear in the output.
  - The server calls the cloud from its containers, whose DNS and proxy can differ from the host's (a proxy set for the
    host's shell only, a container DNS of its own). So the region's identity and API endpoints (the server's URIs,
    never O(endpoints)) are also requested from inside the running api container (Bitwarden Lite - the C(bitwarden)
    container) with C(docker compose exec -T <service> wget) - the images are Alpine, whose BusyBox wget also serves
    their HEALTHCHECK; they have no curl. The proxy the containers got applies. The container gets no installation key.
    When no container can be asked (the server is down, docker is not usable by this user) the module says so in a
    warning and RV(container_probe) and relies on the host's checks.
  - "Proxy: when the install user's Docker client configuration (C(~/.docker/config.json) of the owner of
    O(bwdata_path)) has C(proxies.default.httpsProxy), Docker puts it into the server's containers, so the check tunnels
    through it (HTTP C(CONNECT); C(noProxy) honoured). Otherwise it uses C(HTTPS_PROXY)/C(https_proxy) and C(NO_PROXY)
    of the environment the module runs in, with a warning that the containers do not get that proxy. A C(docker.service)
    systemd drop-in proxy serves the daemon's image pulls only; it is reported, not used."
  - The organization's license file (C(bwdata/core/licenses/organization/<organization id>.json)) must exist and parse
    as JSON; stray bytes after the closing brace make saving the billing sync token fail (bitwarden/server#2082).
  - Every problem is reported with the endpoint or file, the layer that failed and the fix; the module fails when there
    is one.
author:
  - selfhost.bitwarden contributors (@selfhost-bitwarden)
options:
  bwdata_path:
    description: The C(bwdata) directory of the installation.
    type: path
    default: /opt/bitwarden/bwdata
  env_file:
    description:
      - The env file that holds the installation id and key.
      - Defaults to C(<bwdata_path>/env/global.override.env) (standard) or C(<compose_dir>/settings.env) (Bitwarden Lite).
    type: path
  region:
    description: The cloud region the installation id belongs to, the one cloud communication is about to use.
    type: str
    choices: [US, EU]
    default: US
  install_user:
    description:
      - The user that owns the installation. When set, the installation is checked first, exactly as
        M(selfhost.bitwarden.bitwarden_cloud_comm) checks it (C(bitwarden.sh) beside O(bwdata_path), executable,
        owned by this user), so both report a wrong path or user with the same message.
    type: str
  organization_id:
    description:
      - The self-hosted organization id, whose license file must be valid.
      - Empty means every license file in C(bwdata/core/licenses/organization/), of which there must be one at least.
    type: str
    default: ""
  endpoints:
    description:
      - The identity and API base URIs to check.
      - "Default: the region's (for US C(https://identity.bitwarden.com) and C(https://api.bitwarden.com)). Set only to
        check a mirror or in tests; the server itself always uses the region's."
    type: dict
    suboptions:
      identity:
        description: Identity base URI; the token request goes to C(<identity>/connect/token).
        type: str
        required: true
      api:
        description: API base URI; the check requests C(<api>/alive).
        type: str
        required: true
  ca_path:
    description:
      - A CA bundle to verify the endpoints' certificates with instead of the system trust store.
      - Set only to check a mirror or in tests; the real cloud verifies against the system trust store.
    type: path
  timeout:
    description: Seconds to wait at each layer (DNS excepted, which the resolver bounds).
    type: int
    default: 10
  docker_command:
    description: The docker CLI on the host, a name on C(PATH) or an absolute path, for the probe from the api container.
    type: str
    default: docker
extends_documentation_fragment:
  - selfhost.bitwarden.attributes
  - selfhost.bitwarden.installation
  - selfhost.bitwarden.pace
  - selfhost.bitwarden.attributes.info_module
notes:
  - Bitwarden Lite keeps its license files in its data volume, so the license file check is left out for it.
  - The server verifies the cloud's certificates with the trust store of its containers, not the host's; behind a
    TLS-inspecting proxy both need the proxy's CA.
seealso:
  - module: selfhost.bitwarden.bitwarden_cloud_comm
  - ref: ansible_collections.selfhost.bitwarden.docsite.firewall
    description: The egress the servers need, per region.
"""

EXAMPLES = r"""
- name: Check that the host reaches its region's cloud before turning cloud communication on
  selfhost.bitwarden.bitwarden_preflight:
    bwdata_path: /home/bitwarden/bwdata
    region: EU
    organization_id: 2bd8b6d6-6f4a-4a5c-9a7e-0b3a2f6f1c11
  become: true
  become_user: bitwarden
"""

RETURN = r"""
region:
  description: The region checked.
  returned: always
  type: str
  sample: EU
endpoints:
  description: The identity and API base URIs checked.
  returned: always
  type: dict
  sample: {"identity": "https://identity.bitwarden.eu", "api": "https://api.bitwarden.eu"}
proxy:
  description: The proxy the check went through (credentials masked) and where it was configured; V(null) without one.
  returned: always
  type: dict
  sample: {"url": "http://proxy.example.com:3128", "source": "proxies.default.httpsProxy in /home/bitwarden/.docker/config.json"}
container_probe:
  description:
    - Where the endpoints were requested from besides the host - V(api container) (or V(bitwarden container) on
      Bitwarden Lite) - or why that was not possible, a text that starts with C(not possible) and names the reason.
  returned: always
  type: str
  sample: api container
checks:
  description: One entry per endpoint and for the license file, in the order checked.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: V(identity), V(api), V(container identity), V(container api) or V(license_file).
      type: str
    target:
      description: The URL requested or the file read.
      type: str
    ok:
      description: Whether the check passed.
      type: bool
    layer:
      description: The layer that failed (V(DNS), V(TCP), V(proxy), V(TLS), V(HTTP), V(invalid_client), V(container), V(file), V(JSON)); V(null) when it passed.
      type: str
    message:
      description: What failed and how to fix it; V(null) when it passed.
      type: str
"""

import json
import os
import pwd

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.bitwarden.plugins.module_utils import _cloud_comm, _deployment, _pace, _reachability, _regions
from ansible_collections.selfhost.bitwarden.plugins.module_utils._bitwarden_api import ci_get

FIREWALL = "the firewall guide's billing_sync list for %s"
PROXY_HINT = "or set the proxy the containers use (proxies.default.httpsProxy in the install user's ~/.docker/config.json)"
# bitwarden/server#2082: a license file with bytes after the closing brace broke saving the billing sync token.
REUPLOAD = ("Download the organization's license from the cloud web vault (Admin Console > Billing > Subscription > "
            "Download license, with this server's installation id) and upload it on this server (Admin Console > Billing > "
            "Subscription > Update license); organization_id must be the self-hosted organization's id")


def layer_fix(error, url, region):
    """What to do about a failed layer, for the endpoint ``url``."""
    host = url.split("//", 1)[-1].split("/", 1)[0]
    if error.layer == _reachability.DNS:
        return "fix this host's DNS resolver (the containers use it too) %s" % PROXY_HINT
    if error.layer == _reachability.TCP:
        return "allow outbound HTTPS to %s in the firewall (%s) %s" % (host, FIREWALL % region, PROXY_HINT)
    if error.layer == _reachability.PROXY:
        return "the proxy must allow CONNECT to %s (with credentials in the proxy URL when it answers 407)" % host
    if error.layer == _reachability.TLS:
        return ("a TLS-inspecting proxy or firewall presents its own certificate: exempt %s from inspection, or add its CA "
                "to this host's trust store and the server's containers" % host)
    return "something other than the Bitwarden cloud answers (a proxy, a captive portal, a wrong endpoint)"


HEADINGS = {"invalid_client": "invalid_client", "file": "license file missing", "JSON": "license file is not JSON"}


def failed(name, url, layer, detail, fix):
    heading = HEADINGS.get(layer, "%s failed" % layer)
    return {"name": name, "target": url, "ok": False, "layer": layer,
            "message": "%s (%s): %s: %s; %s" % (url, name, heading, detail, fix)}


def check_identity(module, url, proxy, installation_id, key, region):
    """The token request BaseIdentityClientService makes for a license sync (contract 3.2)."""
    form = {"grant_type": "client_credentials", "scope": "api.licensing",
            "client_id": "installation.%s" % installation_id, "client_secret": key}
    target = url.rstrip("/") + "/connect/token"
    try:
        status, raw = _reachability.request(url, "POST", "/connect/token", module.params["timeout"], module.params["ca_path"],
                                            _reachability.proxy_for(url, proxy), form=form)
    except _reachability.ProbeError as exc:
        return failed("identity", target, exc.layer, exc.detail, layer_fix(exc, url, region))
    try:
        data = json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        data = None
    token = ci_get(data, "access_token")
    if status == 200 and token:
        module.no_log_values.add(token)
        return {"name": "identity", "target": target, "ok": True, "layer": None, "message": None}
    if status == 400 and ci_get(data, "error") == "invalid_client":
        other = [name for name in _regions.REGIONS if name != region][0]
        return failed("identity", target, "invalid_client", "the %s cloud rejected the installation id and key" % region,
                      "this installation id/key is not known to the %s cloud: a %s id on an %s config? Set billing_sync_region "
                      "(module: region) to the region the id was issued for, or get a new id and key at %s and set them in "
                      "the env file" % (region, other, region, _regions.HOST_PAGES[region]))
    error = ci_get(data, "error")
    return failed("identity", target, "HTTP", "the token request answered %d%s where the cloud answers 200 with a token"
                  % (status, (" (%s)" % error) if isinstance(error, str) else ""),
                  layer_fix(_reachability.ProbeError("HTTP", ""), url, region))


def check_api(module, url, proxy, region):
    target = url.rstrip("/") + "/alive"
    try:
        status, dummy = _reachability.request(url, "GET", "/alive", module.params["timeout"], module.params["ca_path"],
                                              _reachability.proxy_for(url, proxy))
    except _reachability.ProbeError as exc:
        return failed("api", target, exc.layer, exc.detail, layer_fix(exc, url, region))
    if status != 200:
        return failed("api", target, "HTTP", "GET /alive answered %d where the cloud answers 200" % status,
                      layer_fix(_reachability.ProbeError("HTTP", ""), url, region))
    return {"name": "api", "target": target, "ok": True, "layer": None, "message": None}


CONTAINER_FIX = ("the server's containers cannot reach the cloud although this host can: their DNS or proxy differs from "
                 "the host's. Give the containers the proxy (proxies.default.httpsProxy in the install user's "
                 "~/.docker/config.json, then recreate the containers) or fix their DNS (\"dns\" in /etc/docker/daemon.json, "
                 "the host's /etc/resolv.conf as docker copies it), and allow %s in the firewall for the docker network")
# What answers when no container can be asked: compose's and the runtime's own errors, not wget's.
WGET_SAYS = ("wget:", "ssl_client:", "Connecting to ")


def container_probe(module, compose_dir, deployment, region):
    """The region's endpoints requested from inside the running api container, as the server's HttpClient sees the
    network (its DNS, the proxy docker gave it): -> (checks, how). BusyBox wget, which the Alpine images ship for their
    HEALTHCHECK, GETs /alive (no credentials enter the container); `-T` bounds each read, coreutils timeout the exec."""
    service = "bitwarden" if deployment == _deployment.LITE else "api"
    seconds = module.params["timeout"]
    checks = []
    for name, base in sorted(_regions.cloud_endpoints(region).items(), reverse=True):  # identity, then api
        url = base.rstrip("/") + "/alive"
        argv = ["timeout", str(seconds * 3 + 5), module.params["docker_command"], "compose", "exec", "-T", service,
                "wget", "-q", "-T", str(seconds), "-O", "/dev/null", url]
        try:
            rc, dummy, err = module.run_command(argv, cwd=compose_dir, expand_user_and_vars=False,
                                                errors="surrogate_then_replace")
        except OSError as exc:  # no docker CLI at all
            rc, err = 127, str(exc)
        said = [line.strip() for line in (err or "").splitlines() if line.strip()]
        if rc == 0:
            checks.append({"name": "container " + name, "target": url, "ok": True, "layer": None, "message": None})
            continue
        if rc in (124, 137) or (said and said[-1].startswith(WGET_SAYS)):
            detail = said[-1] if said else "no answer within %d s (packets dropped)" % (seconds * 3 + 5)
            host = url.split("//", 1)[-1].split("/", 1)[0]
            checks.append(failed("container " + name, url, "container", "from the %s container: %s" % (service, detail),
                                 CONTAINER_FIX % host))
            continue
        return [], "not possible: docker compose exec %s in %s failed (exit code %d: %s); checked from the host only" % (
            service, compose_dir, rc, said[-1] if said else "nothing on stderr")
    return checks, "%s container" % service


def check_license_file(path, organization_id):
    """A license file the server can read: present, JSON, one object (nothing after the closing brace)."""
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8-sig", "replace")
    except FileNotFoundError:
        return failed("license_file", path, "file", "no license file for organization %s" % organization_id, REUPLOAD)
    except OSError as exc:
        return failed("license_file", path, "file", "cannot read it (%s)" % exc.strerror, _cloud_comm.BECOME)
    try:
        document = json.loads(text)
    except ValueError as exc:
        return failed("license_file", path, "JSON", "it does not parse as JSON (%s): stray bytes after the closing brace "
                      "make saving the billing sync token fail (bitwarden/server#2082)" % exc, REUPLOAD)
    if not isinstance(document, dict):
        return failed("license_file", path, "JSON", "it holds no license object", REUPLOAD)
    return {"name": "license_file", "target": path, "ok": True, "layer": None, "message": None}


def license_checks(bwdata, organization_id):
    directory = os.path.join(bwdata, "core", "licenses", "organization")
    if organization_id:
        return [check_license_file(os.path.join(directory, "%s.json" % organization_id), organization_id)]
    try:
        names = sorted(name for name in os.listdir(directory) if name.endswith(".json"))
    except OSError:
        names = []
    if not names:
        return [failed("license_file", directory, "file", "no organization license file", REUPLOAD)]
    return [check_license_file(os.path.join(directory, name), name[:-5]) for name in names]


def docker_config_path(bwdata):
    """The Docker client config of the install user (Setup gives bwdata to that user)."""
    try:
        home = pwd.getpwuid(os.stat(bwdata).st_uid).pw_dir
    except (KeyError, OSError):
        return None
    return os.path.join(home, ".docker", "config.json")


def find_proxy(module, bwdata):
    config = docker_config_path(bwdata)
    try:
        proxy = _reachability.container_proxy(config or "", os.environ)
    except ValueError as exc:
        module.fail_json(msg="%s" % exc)
    if proxy is not None and not proxy.source.startswith("proxies."):
        module.warn("Checked through the proxy %s (%s), but the server's containers do not get it: Docker passes only "
                    "proxies.default of the install user's %s to them. Set it there too." % (proxy.url, proxy.source, config))
    dropin = _reachability.daemon_dropin_proxy()
    if dropin and proxy is None:
        module.warn("%s sets a proxy for the Docker daemon (image pulls) only; the server's containers connect to the cloud "
                    "directly, and that is what this check did." % dropin)
    return proxy


def main():
    module = AnsibleModule(
        argument_spec=dict(
            pace=dict(type="dict", options=_pace.PACE_OPTIONS),  # taken by the action plugin on the controller
            bwdata_path=dict(type="path", default="/opt/bitwarden/bwdata"),
            deployment=dict(type="str", choices=list(_deployment.KINDS)),
            compose_dir=dict(type="path"),
            env_file=dict(type="path"),
            install_user=dict(type="str"),
            region=dict(type="str", choices=["US", "EU"], default="US"),
            organization_id=dict(type="str", default=""),
            endpoints=dict(type="dict", options=dict(identity=dict(type="str", required=True),
                                                     api=dict(type="str", required=True))),
            ca_path=dict(type="path"),
            timeout=dict(type="int", default=10),
            docker_command=dict(type="str", default="docker"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    bwdata, region = params["bwdata_path"], params["region"]
    endpoints = params["endpoints"] or _regions.cloud_endpoints(region)
    for name, url in endpoints.items():
        if not url.lower().startswith("https://"):
            module.fail_json(msg="endpoints.%s %r is not an https:// URI: the server reaches the cloud over HTTPS only; "
                                 "leave endpoints unset to check the region's" % (name, url))

    # The installation as the writer reads it (same checks, same messages), then its id and key.
    plan = _cloud_comm.plan(module, bwdata, params["env_file"], region, True, params["install_user"], params["deployment"],
                            params["compose_dir"])
    installation_id, key = _cloud_comm.read_installation(module, plan.env_file, plan.text, region, plan.deployment)
    proxy = find_proxy(module, bwdata)
    checks = [check_identity(module, endpoints["identity"], proxy, installation_id, key, region),
              check_api(module, endpoints["api"], proxy, region)]
    compose_dir = params["compose_dir"] or (os.path.join(bwdata, "docker") if plan.deployment == _deployment.STANDARD
                                            else os.path.dirname(os.path.normpath(bwdata)))
    from_container, how = container_probe(module, compose_dir, plan.deployment, region)
    if not from_container:
        module.warn("The cloud was checked from this host only: %s. The server calls the cloud from its containers, "
                    "whose DNS and proxy can differ." % how[len("not possible: "):].split("; checked", 1)[0])
    checks += from_container
    if plan.deployment == _deployment.STANDARD:
        checks += license_checks(bwdata, params["organization_id"])
    result = dict(changed=False, region=region, endpoints=dict(endpoints), checks=checks, container_probe=how,
                  proxy={"url": proxy.url, "source": proxy.source} if proxy else None)
    problems = [check["message"] for check in checks if not check["ok"]]
    if problems:
        module.fail_json(msg="Preflight for the %s cloud failed before anything changed: %s" % (region, " | ".join(problems)),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
