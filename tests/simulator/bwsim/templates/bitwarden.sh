#!/usr/bin/env bash
# bitwarden.sh as laid out by the bwsim simulator: same banner, root prompt, commands, output streams and exit codes
# as the real script (self-host bitwarden.sh, contract §7); it hands the commands to bwdata/scripts/run.sh, whose
# docker is the simulator's stand-in.
set -e

# The simulator's docker stand-in plays the system's docker (a real host has it in /usr/bin).
PATH="@SIM_BIN@:$PATH"
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

if [ "$EUID" -eq 0 ]; then
    echo -e "${RED}WARNING: This script is running as the root user!"
    echo -e "If you are running a standard deployment this script should be running as a dedicated Bitwarden User as per the documentation.${NC}"
    # read straight from stdin like the real script: closed -> "read error", EOF -> exit 1, open and silent -> waits
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
if docker compose &> /dev/null; then
    dccmd='docker compose'
elif command -v docker-compose &> /dev/null; then
    dccmd='docker-compose'
    echo "docker compose not found, falling back to docker-compose."
else
    echo "Error: Neither 'docker compose' nor 'docker-compose' commands were found. Please install Docker Compose." >&2
    exit 1
fi

SCRIPTS_DIR="$OUTPUT/scripts"
COREVERSION="@COREVERSION@"
WEBVERSION="@COREVERSION@"
KEYCONNECTORVERSION="2025.11.0"

echo "bitwarden.sh version $COREVERSION"
docker --version
if [[ "$dccmd" == "docker compose" ]]; then
    $dccmd version
else
    $dccmd --version
fi
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
    "start" | "restart" | "update" | "rebuild" | "updateconf" | "updatedb" | "stop" | "renewcert")
        checkOutputDirExists
        "$SCRIPTS_DIR/run.sh" "$1" "$OUTPUT" "$COREVERSION" "$WEBVERSION" "$KEYCONNECTORVERSION"
        ;;
    "uninstall")
        checkOutputDirExists
        "$SCRIPTS_DIR/run.sh" uninstall "$OUTPUT"
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
