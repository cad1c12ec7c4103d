#!/usr/bin/env bash
# bitwarden.sh as laid out by the bwsim simulator: same banner, root prompt, commands and exit codes as the
# real script, but the "containers" are the simulator's instance, reached through its control port.
set -e

SIM_NAME="@SIM_NAME@"
SIM_CONTROL="@SIM_CONTROL@"
SIM_PYTHON="@SIM_PYTHON@"
SIM_ALLOW_ROOT="@SIM_ALLOW_ROOT@"
COMMAND="${1:-}"
DIR="$( cd "$( dirname "${BASH_SOURCE[0]}" )" && pwd )"

# The simulator's record of every invocation: time, subcommand, effective user, exit code.
logInvocation() {
    local rc=$?
    printf '%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$COMMAND" "$(id -un)" "$rc" >>"$DIR/bitwarden.sh.log" || true
}
trap logInvocation EXIT

cat << "EOT"
 _     _ _                         _
| |__ (_) |___      ____ _ _ __ __| | ___ _ __
| '_ \| | __\ \ /\ / / _` | '__/ _` |/ _ \ '_ \
| |_) | | |_ \ V  V / (_| | | | (_| |  __/ | | |
|_.__/|_|\__| \_/\_/ \__,_|_|  \__,_|\___|_| |_|

EOT

cat << EOT
Open source password management solutions
Copyright 2015-$(date +'%Y'), Bitwarden, Inc.
https://bitwarden.com, https://github.com/bitwarden

===================================================

EOT

RED='\033[0;31m'
NC='\033[0m'

if [ "$EUID" -eq 0 ] && [ "$SIM_ALLOW_ROOT" != "true" ]; then
    echo -e "${RED}WARNING: This script is running as the root user!"
    echo -e "If you are running a standard deployment this script should be running as a dedicated Bitwarden User as per the documentation.${NC}"
    read -r -p "Do you still want to continue? (y/n): " choice
    case "$choice" in
        [Yy]|[Yy][Ee][Ss])
            echo -e "Continuing...."
            ;;
        *)
            exit 1
            ;;
    esac
fi

OUTPUT="$DIR/bwdata"
if [ $# -eq 2 ]; then
    OUTPUT=$2
fi

COREVERSION="@COREVERSION@"

echo "bitwarden.sh version $COREVERSION"
echo "Docker version 28.2.2, build e6534b4 (bwsim)"
echo "Docker Compose version v2.36.2 (bwsim)"
echo ""

function checkOutputDirExists() {
    if [ ! -d "$OUTPUT" ]; then
        echo "Cannot find a Bitwarden installation at $OUTPUT."
        exit 1
    fi
}

function checkOutputDirNotExists() {
    if [ -d "$OUTPUT/docker" ] || [ -d "$OUTPUT/env" ]; then
        echo "Looks like Bitwarden is already installed at $OUTPUT."
        exit 1
    fi
}

# Tell the simulator; it answers when the "containers are created" (not when they are healthy).
function simulate() {
    "$SIM_PYTHON" -I - "$SIM_CONTROL" "$SIM_NAME" "$1" "$(id -un)" << "PYEOF"
import json
import sys
import urllib.request

url, name, command, user = sys.argv[1:5]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
request = urllib.request.Request(
    f"{url}/_sim/instances/{name}/bitwarden-sh",
    data=json.dumps({"command": command, "user": user}).encode(),
    headers={"Content-Type": "application/json"},
)
try:
    with opener.open(request, timeout=3600) as response:
        result = json.load(response)
except OSError as exc:
    print(f"bwsim: the simulator does not answer at {url}: {exc}", file=sys.stderr)
    sys.exit(1)
sys.stdout.write(result.get("output", ""))
sys.exit(int(result.get("exit_code", 1)))
PYEOF
}

function listCommands() {
cat << EOT
Available commands:

install
start
restart
stop
update
updatedb
updaterun
updateself
updateconf
uninstall
renewcert
rebuild
compresslogs
help

See more at https://bitwarden.com/help/article/install-on-premise/#script-commands-reference

EOT
}

case $1 in
    "install")
        checkOutputDirNotExists
        ;;
    "start" | "restart" | "update" | "rebuild" | "updateconf" | "updatedb" | "stop" | "renewcert" | "uninstall")
        checkOutputDirExists
        simulate "$1"
        ;;
    "updaterun")
        checkOutputDirExists
        ;;
    "updateself")
        echo "Updated self." && exit
        ;;
    "compresslogs")
        checkOutputDirExists
        echo "Compressing all logs..."
        ;;
    "help")
        listCommands
        ;;
    *)
        echo "No command found."
        echo
        listCommands
esac
