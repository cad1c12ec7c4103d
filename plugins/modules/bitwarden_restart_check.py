#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bitwarden_restart_check
short_description: Check, before any change, that a Bitwarden restart can succeed without leaving the server down
version_added: 0.4.0
description:
  - Runs on the Bitwarden host as the install user (the docker group) and changes nothing. It fails when the restart
    the host is about to get would take the server down and not bring it back, so that the caller stops before it
    touches anything.
  - O(restart_method=bitwarden_sh) - C(run.sh) takes the containers down and then pulls the images, so the container
    registry must answer the Docker daemon. When C(bwdata/letsencrypt/live) exists it also pulls C(certbot/certbot) from
    Docker Hub and runs C(certbot renew) before it starts the server again (C(updateLetsEncrypt)), so Docker Hub must
    answer too.
  - O(restart_method=compose) - C(docker compose up -d) does not pull, so the images the compose files name must be
    present locally, or else the registry must answer.
  - The compose is the one C(bitwarden.sh) will use - C(docker compose) when the plugin answers, else C(docker-compose)
    (v1, looked up beside O(docker_command) and then on C(PATH)). Neither means the restart fails before it takes
    anything down. The compose method runs C(docker compose) itself, with no fallback.
  - The images are those of C(docker compose config --images) (v1 - the C(image) lines of C(docker-compose config)) in
    O(compose_dir) (C(docker-compose.yml) and C(docker-compose.override.yml), the files C(run.sh) names). Presence is
    C(docker image inspect).
  - The registry probe goes the way the restart's pull goes, through the Docker daemon (its proxy from a systemd
    drop-in or C(daemon.json), its registry mirrors), not through the CLI, which has none of them - C(docker pull) of
    the digest of the image already present, which fetches the manifest and nothing else and moves no tag. Only an
    image that is not present locally is probed with the CLI's read-only C(docker manifest inspect); RV(registry_probe)
    says which.
  - Every docker command runs under coreutils C(timeout) O(command_timeout) in O(compose_dir).
  - Only the causes that leave a server down fail the module. When the installation's file (C(bitwarden.sh), for
    Bitwarden Lite C(docker-compose.yml)) is missing or belongs to another user than O(install_user), or
    C(docker compose config) fails, the restart would fail before it takes anything down, so the module returns
    RV(checked=false) with the RV(reason) instead (M(selfhost.bitwarden.bitwarden_cloud_comm) reports a wrong
    directory or user with the fix).
author:
  - selfhost.bitwarden contributors (@selfhost-bitwarden)
extends_documentation_fragment:
  - selfhost.bitwarden.attributes
  - selfhost.bitwarden.attributes.info_module
options:
  install_dir:
    description:
      - The installation's directory, which holds C(bitwarden.sh) (Bitwarden Lite - C(docker-compose.yml)).
    type: path
    required: true
  deployment:
    description:
      - The kind of installation. V(standard) is C(bitwarden.sh) with C(bwdata/); V(lite) is Bitwarden Lite, the
        single container set up by C(docker-compose.yml) and C(settings.env).
    type: str
    choices: [standard, lite]
    default: standard
  compose_dir:
    description:
      - Where C(docker compose) runs.
      - Defaults to C(<install_dir>/bwdata/docker) (standard) or O(install_dir) (Bitwarden Lite).
    type: path
  install_user:
    description:
      - The user that owns the installation's file and runs the restart. Run the module as this user (C(become_user)),
        so that the docker commands run with its access.
    type: str
    required: true
  restart_method:
    description:
      - The restart the host is about to get. V(bitwarden_sh) is C(./bitwarden.sh restart) (standard only);
        V(compose) is C(docker compose up -d) in O(compose_dir).
    type: str
    choices: [bitwarden_sh, compose]
    required: true
  docker_command:
    description: The docker CLI on the host, a name on C(PATH) or an absolute path.
    type: str
    default: docker
  command_timeout:
    description: Seconds each docker command may take (coreutils C(timeout)), from 1 to 3600.
    type: int
    default: 60
notes:
  - The failure message names the role variable C(billing_sync_restart_method) that O(restart_method) stands for.
seealso:
  - module: selfhost.bitwarden.bitwarden_cloud_comm
  - ref: ansible_collections.selfhost.bitwarden.docsite.restart
    description: The restart methods and the check before any change.
"""

EXAMPLES = r"""
- name: Stop before a restart that would leave the server down
  selfhost.bitwarden.bitwarden_restart_check:
    install_dir: /home/bitwarden
    install_user: bitwarden
    restart_method: bitwarden_sh
  become: true
  become_user: bitwarden
  register: restart_check

- name: Say why the check was not possible
  ansible.builtin.debug:
    msg: "{{ restart_check.reason }}"
  when: not restart_check.checked

- name: Check that docker compose up -d can restart Bitwarden Lite (docker-compose.yml in /srv/bitwarden-lite)
  selfhost.bitwarden.bitwarden_restart_check:
    install_dir: /srv/bitwarden-lite
    deployment: lite
    install_user: bitwarden
    restart_method: compose
  become: true
  become_user: bitwarden
"""

RETURN = r"""
checked:
  description:
    - Whether the check ran to its end. V(false) when it was not possible; RV(reason) says why.
    - The module fails instead when the restart cannot succeed.
  returned: always
  type: bool
  sample: true
reason:
  description: Why the check was not possible; V(null) when RV(checked).
  returned: always
  type: str
  sample: /opt/bitwarden/bitwarden.sh belongs to root, not to install_user bitwarden
images:
  description: The images the compose files name (C(docker compose config --images)); empty when not listed.
  returned: always
  type: list
  elements: str
  sample: [ghcr.io/bitwarden/api:2026.8.0, ghcr.io/bitwarden/identity:2026.8.0]
local_images_present:
  description:
    - Whether C(docker image inspect) found every image locally.
    - V(null) when not looked at (O(restart_method=bitwarden_sh), or the check stopped earlier).
  returned: always
  type: bool
  sample: true
registry_answers:
  description:
    - Whether the container registry answered the probe of the first image (RV(registry_probe)).
    - V(null) when not asked (the images are present for O(restart_method=compose), or the check stopped earlier).
  returned: always
  type: bool
  sample: null
registry_probe:
  description:
    - How the registry was asked - through the Docker daemon (C(docker pull) of the local image's digest) or, for an
      image not present locally, through the docker CLI (C(docker manifest inspect)). V(null) when not asked.
  returned: always
  type: str
  sample: the Docker daemon (docker pull ghcr.io/bitwarden/api@sha256:0f3c...)
compose:
  description: The compose the restart uses, V(docker compose) or V(docker-compose); V(null) when the check stopped earlier.
  returned: always
  type: str
  sample: docker compose
letsencrypt:
  description:
    - For O(restart_method=bitwarden_sh) when C(bwdata/letsencrypt/live) exists, the C(certbot/certbot) probe
      (C(image), C(registry_answers), C(registry_probe)); V(null) otherwise.
  returned: always
  type: dict
  sample: null
"""

import json
import os
import pwd
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.selfhost.bitwarden.plugins.module_utils._deployment import KINDS, LITE, STANDARD

# The file that stands for the installation: its owner runs the restart.
OWNER_FILES = {STANDARD: "bitwarden.sh", LITE: "docker-compose.yml"}
# run.sh updateLetsEncrypt: with this dir, restart pulls certbot from Docker Hub and runs it after `down`.
LETSENCRYPT_LIVE = os.path.join("bwdata", "letsencrypt", "live")
CERTBOT_IMAGE = "certbot/certbot"
# The role's message before this module existed (tests and the troubleshooting guide quote it).
CANNOT_SUCCEED = "Nothing was changed: the restart this host needs (billing_sync_restart_method %s) cannot succeed. %s"
REGISTRY_NEEDED = ("The container registry does not answer %s (%s), and bitwarden.sh restart pulls the images (%s pull) "
                   "after taking the server down, which would leave it down. Allow egress to the registry (ghcr.io) for "
                   "the Docker daemon (its proxy: systemd drop-in or daemon.json; its registry mirrors) or set "
                   "billing_sync_restart_method to compose when the images are present locally.")
CERTBOT_NEEDED = ("%s exists, so bitwarden.sh restart also pulls %s from Docker Hub and runs certbot renew after taking "
                  "the server down (run.sh updateLetsEncrypt), and Docker Hub does not answer %s (%s), which would leave "
                  "the server down. Allow the Docker daemon egress to registry-1.docker.io, or set "
                  "billing_sync_restart_method to compose (no certificate renewal).")
IMAGES_NEEDED = ("Images named in %s/docker-compose.yml are missing locally (%s) and the container registry does not "
                 "answer (%s). Pull the images while the host can reach the registry (docker compose pull), then re-run.")
NO_COMPOSE = ("neither `docker compose` nor docker-compose answers on this host (%s): the restart would fail before it "
              "takes anything down")
# `docker-compose config` (v1 has no --images) prints the resolved file: one `image:` line per service.
V1_IMAGE = re.compile(r"^\s+image:\s*['\"]?([^'\"\s]+)['\"]?\s*$", re.M)


def nonempty_lines(text):
    return [line for line in (text or "").splitlines() if line]


class Checker:
    def __init__(self, module, compose_dir):
        self.module = module
        self.compose_dir = compose_dir
        params = module.params
        self.docker_command = params["docker_command"]
        self.prefix = ["timeout", str(params["command_timeout"])]
        self.compose = [self.docker_command, "compose"]
        self.result = dict(changed=False, checked=False, reason=None, images=[], local_images_present=None,
                           registry_answers=None, registry_probe=None, compose=None, letsencrypt=None)

    def run_argv(self, argv):
        """-> (rc, stdout, stderr) of `timeout <s> <argv>` in compose_dir."""
        return self.module.run_command(self.prefix + list(argv), cwd=self.compose_dir, expand_user_and_vars=False,
                                       errors="surrogate_then_replace")

    def docker(self, *args):
        return self.run_argv([self.docker_command] + list(args))

    def not_checked(self, reason):
        self.result["reason"] = reason
        self.module.exit_json(**self.result)

    def installation_owner_matches(self, install_dir, deployment, install_user):
        path = os.path.join(install_dir, OWNER_FILES[deployment])
        try:
            uid = os.stat(path).st_uid
        except OSError as exc:
            self.not_checked("cannot look at %s (%s) as %s; bitwarden_cloud_comm names the install dir or user to set"
                             % (path, exc.strerror or to_native(exc), install_user))
        try:
            owner = pwd.getpwuid(uid).pw_name
        except KeyError:
            owner = "uid %d" % uid
        if owner != install_user:
            self.not_checked("%s belongs to %s, not to install_user %s; bitwarden_cloud_comm names the user to set"
                             % (path, owner, install_user))

    def choose_compose(self, restart_method):
        """The compose the restart will use. bitwarden.sh and run.sh take `docker compose` when it answers, else
        docker-compose (v1) when `command -v` finds it, and tell why not otherwise; the compose method is the role's
        own `docker compose up -d`, with no fallback."""
        rc, dummy, err = self.docker("compose")
        if rc == 0:
            self.result["compose"] = "docker compose"
            return
        why = (nonempty_lines(err) or ["exit code %d" % rc])[0]
        if restart_method == "bitwarden_sh":
            # bitwarden.sh finds it on PATH; the docker CLI's own dir first, where packages install both
            beside = [os.path.dirname(self.docker_command)] if os.path.isabs(self.docker_command) else []
            v1 = self.module.get_bin_path("docker-compose", opt_dirs=beside)
            if v1:
                self.compose = [v1]
                self.result["compose"] = "docker-compose"
                return
        self.not_checked(NO_COMPOSE % why)

    def list_images(self):
        if self.result["compose"] == "docker compose":
            words = ["config", "--images"]
            rc, out, err = self.run_argv(self.compose + words)
            images = nonempty_lines(out)
        else:
            words = ["config"]
            rc, out, err = self.run_argv(self.compose + words)
            images = V1_IMAGE.findall(out or "")
        if rc != 0:
            # bitwarden.sh (and compose up) fail the same way before they take anything down.
            self.not_checked("%s %s failed in %s (exit code %d: %s): the restart would fail before it takes anything "
                             "down" % (self.result["compose"], " ".join(words), self.compose_dir, rc,
                                       (nonempty_lines(err) or ["nothing on stderr"])[-1]))
        return images

    def local_digest(self, image):
        """The registry digest reference of a local image (`repo@sha256:…`), or None when it is not present."""
        rc, out, dummy = self.docker("image", "inspect", image)
        if rc != 0:
            return None
        try:
            digests = json.loads(out)[0].get("RepoDigests") or []
        except (ValueError, IndexError, AttributeError):
            return None
        repo = image.split("@", 1)[0]
        repo = repo.rsplit(":", 1)[0] if ":" in repo.rsplit("/", 1)[-1] else repo
        return next((d for d in digests if d.split("@", 1)[0] == repo), digests[0] if digests else None)

    def registry_probe(self, image):
        """-> (answers, how, error) for the registry of ``image``, asked the way the restart's pull asks it.

        compose pull (v2 and v1) has the Docker daemon fetch the images: the daemon's proxy (systemd drop-in,
        daemon.json), its registry mirrors and insecure registries apply, the shell's proxy does not. `docker manifest
        inspect` runs in the CLI with none of them, so it can pass where the pull fails, or the other way round.
        `docker pull` of the digest of the image already present goes through the daemon, fetches the manifest and
        nothing else (the layers are there) and moves no tag: the same path, read-only. Only for an image not present
        locally (no digest) is the CLI's manifest request the probe, said as much in RV(registry_probe)."""
        digest = self.local_digest(image)
        if digest:
            rc, dummy, err = self.docker("pull", digest)
            return rc == 0, "the Docker daemon (docker pull %s)" % digest, err
        rc, dummy, err = self.docker("manifest", "inspect", image)
        return rc == 0, ("the docker CLI (docker manifest inspect %s; not present locally, so the daemon's path was not tried)"
                         % image), err

    def run(self, install_dir, deployment, install_user, restart_method):
        self.installation_owner_matches(install_dir, deployment, install_user)
        if not os.path.isdir(self.compose_dir):
            self.not_checked("compose_dir %s is not a directory: the restart would fail before it takes anything down"
                             % self.compose_dir)
        if self.module.get_bin_path("timeout") is None:
            self.not_checked("coreutils timeout is not on PATH: the restart, which runs under it, would fail before it "
                             "takes anything down")
        self.choose_compose(restart_method)
        # Without COMPOSE_FILE, compose reads docker-compose.yml and docker-compose.override.yml of its working dir:
        # the same files run.sh names.
        images = self.list_images()
        self.result["images"] = images
        if not images:
            self.not_checked("%s config named no image in %s: nothing to check" % (self.result["compose"], self.compose_dir))
        local_err = ""
        if restart_method == "compose":
            rc, dummy, local_err = self.docker("image", "inspect", *images)
            self.result["local_images_present"] = rc == 0
            if rc == 0:
                self.result["checked"] = True
                return self.result
        # One image stands for the registry (every image of the compose files comes from it).
        answers, how, registry_err = self.registry_probe(images[0])
        self.result.update(registry_answers=answers, registry_probe=how)
        causes = []
        if not answers:
            detail = " / ".join(nonempty_lines(registry_err)[-2:])
            if restart_method == "bitwarden_sh":
                causes.append(REGISTRY_NEEDED % (how, detail, self.result["compose"]))
            else:
                causes.append(IMAGES_NEEDED % (self.compose_dir, " / ".join(nonempty_lines(local_err)[:2]),
                                               "".join(nonempty_lines(registry_err)[-1:])))
        live = os.path.join(install_dir, LETSENCRYPT_LIVE)
        if restart_method == "bitwarden_sh" and os.path.isdir(live):
            le_answers, le_how, le_err = self.registry_probe(CERTBOT_IMAGE)
            self.result["letsencrypt"] = {"image": CERTBOT_IMAGE, "registry_answers": le_answers, "registry_probe": le_how}
            if not le_answers:
                causes.append(CERTBOT_NEEDED % (live, CERTBOT_IMAGE, le_how, " / ".join(nonempty_lines(le_err)[-2:])))
        self.result["checked"] = True
        if causes:
            self.module.fail_json(msg=CANNOT_SUCCEED % (restart_method, " ".join(causes)), **self.result)
        return self.result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            install_dir=dict(type="path", required=True),
            deployment=dict(type="str", choices=list(KINDS), default=STANDARD),
            compose_dir=dict(type="path"),
            install_user=dict(type="str", required=True),
            restart_method=dict(type="str", choices=["bitwarden_sh", "compose"], required=True),
            docker_command=dict(type="str", default="docker"),
            command_timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not os.path.isabs(params["install_dir"]):
        module.fail_json(msg="install_dir must be an absolute path, not %s: set it to the directory that holds "
                             "bitwarden.sh (Bitwarden Lite: docker-compose.yml)" % params["install_dir"])
    if params["compose_dir"] is not None and not os.path.isabs(params["compose_dir"]):
        module.fail_json(msg="compose_dir must be an absolute path, not %s: set it to the directory docker compose "
                             "runs in, or leave it out" % params["compose_dir"])
    if not params["install_user"].strip():
        module.fail_json(msg="install_user must not be empty: set it to the user that owns the installation and runs "
                             "the restart (role: billing_sync_user)")
    if not params["docker_command"].strip():
        module.fail_json(msg="docker_command must not be empty: set it to the docker CLI on the host (a name on PATH "
                             "or an absolute path), or leave it out")
    if not 1 <= params["command_timeout"] <= 3600:
        module.fail_json(msg="command_timeout must be from 1 to 3600 seconds, not %d" % params["command_timeout"])
    if params["deployment"] == LITE and params["restart_method"] == "bitwarden_sh":
        module.fail_json(msg="restart_method bitwarden_sh needs a standard installation: Bitwarden Lite has no "
                             "bitwarden.sh, set restart_method to compose")
    install_dir = params["install_dir"]
    compose_dir = params["compose_dir"] or (install_dir if params["deployment"] == LITE
                                            else os.path.join(install_dir, "bwdata", "docker"))
    checker = Checker(module, compose_dir)
    module.exit_json(**checker.run(install_dir, params["deployment"], params["install_user"], params["restart_method"]))


if __name__ == "__main__":
    main()
