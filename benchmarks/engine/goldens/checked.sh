# Sourced by requantize.sh and synth-models.sh: files generated into a cache and pinned by SHA-256.

# sha_ok FILE SHA256: FILE exists and has that SHA-256.
sha_ok() { echo "$2  $1" | sha256sum --check --status 2>/dev/null; }

# install_checked TMP DEST SHA256 WHAT: moves TMP to DEST if it has the pinned SHA-256; else removes it
# and stops with a message naming WHAT (the generator is not reproducing the pinned bytes).
install_checked() {
    local got
    got="$(sha256sum "$1" | cut -d' ' -f1)"
    if [[ "$got" != "$3" ]]; then
        rm -f "$1"
        echo "$4 came out with SHA-256 $got, expected $3 (another llama.cpp, gguf or generator?)" >&2
        exit 1
    fi
    mv "$1" "$2"
}
