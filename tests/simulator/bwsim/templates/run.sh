#!/usr/bin/env bash
# bwdata/scripts/run.sh as the bwsim simulator lays it out: the command sequences of the real run.sh (self-host
# run.sh, contract §7) under `set -e`, through whatever `docker` is on PATH (the simulator's stand-in).
set -e

if docker compose &> /dev/null; then
    dccmd='docker compose'
elif command -v docker-compose &> /dev/null; then
    dccmd='docker-compose'
    echo "docker compose not found, falling back to docker-compose."
else
    echo "Error: Neither 'docker compose' nor 'docker-compose' commands were found. Please install Docker Compose." >&2
    exit 1
fi

OUTPUT_DIR="${2:-..}"
COREVERSION="${3:-latest}"
WEBVERSION="${4:-latest}"
KEYCONNECTORVERSION="${5:-latest}"
ENV_DIR="$OUTPUT_DIR/env"
DOCKER_DIR="$OUTPUT_DIR/docker"

function composeFiles() {
    if [ -f "$DOCKER_DIR/docker-compose.override.yml" ]; then
        export COMPOSE_FILE="$DOCKER_DIR/docker-compose.yml:$DOCKER_DIR/docker-compose.override.yml"
    else
        export COMPOSE_FILE="$DOCKER_DIR/docker-compose.yml"
    fi
    export COMPOSE_HTTP_TIMEOUT="300"
}

# down only when containers exist: `ps` prints a header line, so more than 2 lines means a running deployment
function composeDown() {
    composeFiles
    if [ "$($dccmd ps | wc -l)" -gt 2 ]; then
        $dccmd down
    fi
}

function composePull() {
    composeFiles
    $dccmd pull
}

function composeUp() {
    composeFiles
    $dccmd up -d
}

function setupContainer() {
    docker run -i --rm --name setup -v "$OUTPUT_DIR":/bitwarden --env-file "$ENV_DIR/uid.env" \
        "ghcr.io/bitwarden/setup:$COREVERSION" /app/Setup "$@" -os lin -corev "$COREVERSION" -webv "$WEBVERSION" \
        -keyconnectorv "$KEYCONNECTORVERSION"
}

function pullSetup() {
    docker pull "ghcr.io/bitwarden/setup:$COREVERSION"
}

function printEnvironment() {
    pullSetup
    setupContainer -printenv 1
}

# certbot/certbot comes from Docker Hub and binds 80/443: it runs after down, before up
function updateLetsEncrypt() {
    if [ -d "${OUTPUT_DIR}/letsencrypt/live" ]; then
        docker pull certbot/certbot
        docker run -i --rm --name certbot -p 443:443 -p 80:80 \
            -v "$OUTPUT_DIR/letsencrypt":/etc/letsencrypt/ certbot/certbot \
            renew --logs-dir /etc/letsencrypt/logs
    fi
}

function restart() {
    composeDown
    composePull
    updateLetsEncrypt
    composeUp
    printEnvironment
}

case $1 in
    "start" | "restart" | "renewcert")
        restart
        ;;
    "pull")
        composePull
        ;;
    "stop")
        composeDown
        ;;
    "rebuild")
        composeDown
        setupContainer -update 1
        ;;
    "updateconf")
        composeDown
        pullSetup
        setupContainer -update 1
        ;;
    "updatedb")
        composeFiles
        setupContainer -update 1 -db 1
        echo "Database update complete"
        ;;
    "update")
        composeDown
        pullSetup
        setupContainer -update 1
        restart
        ;;
esac
