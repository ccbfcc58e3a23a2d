# Every dependency comes from Debian packages installed by scripts/setup.sh.
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED)           # CPU kernels share oneDNN's OpenMP thread pool
find_package(PkgConfig REQUIRED)
find_package(dnnl REQUIRED)              # oneDNN: convolution and matmul
find_package(nlohmann_json 3 REQUIRED)   # safetensors headers, configs, HTTP bodies
find_package(CLI11 REQUIRED)             # command line
find_package(PNG REQUIRED)               # PNG read/write with text chunks
find_package(JPEG REQUIRED)              # JPEG input images
find_package(ZLIB REQUIRED)
find_package(OpenSSL REQUIRED)          # SHA-256 of sources and LoRAs (libcrypto's EVP)
pkg_check_modules(LIBZIP REQUIRED IMPORTED_TARGET libzip)   # PyTorch zip checkpoints
pkg_check_modules(ICU REQUIRED IMPORTED_TARGET icu-uc icu-i18n)  # tokenizer text clean-up
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)   # `sdc serve` (Debian's shared build)
find_package(GTest REQUIRED)
