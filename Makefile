# ortl — the whole experiment and the tests, from a fresh clone.
#   make all    split -> augment -> train -> infer -> report on the bundled fixtures (CPU)
#   make test   every test (installs what it needs first)
#   make compare  the backbone comparison (COMPARE) on the same split and tensors
# Variables (override on the command line: make all DATA=~/tb-xray SIZE=224x224):
DATA     ?= fixtures/xray
OUT      ?= out
SIZE     ?= 100x100
COPIES   ?= 8
SEED     ?= 12
VAL      ?= 0.2
TEST     ?= 0.0
# The fixture run trains a small ResNet from scratch on 160 images, which the tutorial's
# heavy augmentation (AUGMENT='--preset tutorial') would swamp; the real experiment with
# pretrained weights uses the tutorial's settings (see README).
AUGMENT  ?= --flip horizontal --rotate 0.03 --zoom 0.1,0.1 --translate 0.05,0.05 --contrast 0.3
EPOCHS   ?= 30
DEVICE   ?= cpu
BACKBONE ?= resnet-mini
TRAIN    ?= --optimizer adamw --lr 3e-3 --weight-decay 1e-3 --schedule cosine
CARGO    ?= cargo
# make compare: the tutorial's closing comparison, one run per backbone on the same tensors.
# The defaults are the reduced members (minutes on CPU); the published networks are
# COMPARE='resnet50 inception_resnet_v2 mobilenet_v2 efficientnet_b0 densenet201 inception_v3 vgg19'.
COMPARE  ?= resnet-mini inception-resnet-mini mobilenet-mini efficientnet-mini densenet-mini \
            inception-mini vgg-mini

# With a test split (TEST > 0), the test images are classified too, and the report scores
# them at the threshold chosen on the validation predictions (never on themselves).
HAS_TEST := $(shell awk 'BEGIN { print ($(TEST) > 0) ? "yes" : "" }')
BIN      := target/release
ORT_LIB  := .ort/libonnxruntime.so.1.31.1
export ORT_DYLIB_PATH ?= $(CURDIR)/$(ORT_LIB)

.PHONY: all setup setup-cuda build split augment train infer report compare cv test lint bench bench-quick gpu-check gpu-pack fuzz fixtures clean

all: report
	@awk -F, 'NR > 1 { n++; if ($$2 == $$4) c++ } END { printf "make all: validation accuracy of model.onnx %.3f (%d/%d)\n", c / n, c, n }' $(OUT)/predictions.csv
ifneq ($(HAS_TEST),)
	@awk -F, 'NR > 1 { n++; if ($$2 == $$4) c++ } END { printf "make all: test accuracy of model.onnx %.3f (%d/%d); the report scores the test split at the threshold chosen on validation\n", c / n, c, n }' $(OUT)/predictions-test.csv
endif
	@echo "make all: model in $(OUT)/run/, predictions in $(OUT)/predictions.csv, report in $(OUT)/report/report.html"

## setup: the ONNX Runtime C library from the pinned PyPI wheel (CPU), into .ort/
setup: .ort/INSTALLED
.ort/INSTALLED: scripts/setup-ort.sh
	scripts/setup-ort.sh cpu

## setup-cuda: the same from onnxruntime-gpu, adding the CUDA execution provider
setup-cuda:
	scripts/setup-ort.sh cuda

build: setup
	$(CARGO) build --release --bins

split: build
	@mkdir -p $(OUT)
	$(BIN)/ortl-split $(DATA) --val $(VAL) --test $(TEST) --seed $(SEED) -o $(OUT)/manifest.csv

augment: split
	$(BIN)/ortl-augment $(OUT)/manifest.csv -o $(OUT)/tensors --force \
	  --size $(SIZE) --copies $(COPIES) --seed $(SEED) $(AUGMENT)

train: augment
	$(BIN)/ortl-train $(OUT)/tensors -o $(OUT)/run --force --backbone $(BACKBONE) \
	  --epochs $(EPOCHS) --device $(DEVICE) --seed $(SEED) $(TRAIN)

infer: train
	$(BIN)/ortl-infer --model $(OUT)/run/model.onnx --manifest $(OUT)/manifest.csv --split val \
	  --device $(DEVICE) --cam $(OUT)/cams --force > $(OUT)/predictions.csv.partial && mv $(OUT)/predictions.csv.partial $(OUT)/predictions.csv
	cp $(OUT)/predictions.csv $(OUT)/run/predictions.csv  # so 'ortl-report compare' finds it
ifneq ($(HAS_TEST),)
	$(BIN)/ortl-infer --model $(OUT)/run/model.onnx --manifest $(OUT)/manifest.csv --split test \
	  --device $(DEVICE) --cam $(OUT)/cams-test --force > $(OUT)/predictions-test.csv.partial && mv $(OUT)/predictions-test.csv.partial $(OUT)/predictions-test.csv
endif

report: infer
ifneq ($(HAS_TEST),)
	$(BIN)/ortl-report --predictions $(OUT)/predictions-test.csv --threshold-from $(OUT)/predictions.csv \
	  --run $(OUT)/run --cams $(OUT)/cams-test -o $(OUT)/report --force
else
	$(BIN)/ortl-report --predictions $(OUT)/predictions.csv --run $(OUT)/run \
	  --cams $(OUT)/cams -o $(OUT)/report --force
endif

## compare: train, infer and evaluate every backbone in COMPARE, then compare the runs
compare: augment
	@for b in $(COMPARE); do \
	  run=$(OUT)/compare/$$(basename $$b .onnx); \
	  echo "make compare: $$b -> $$run"; \
	  $(BIN)/ortl-train $(OUT)/tensors -o $$run --force --backbone $$b \
	    --epochs $(EPOCHS) --device $(DEVICE) --seed $(SEED) $(TRAIN) || exit 1; \
	  $(BIN)/ortl-infer --model $$run/model.onnx --manifest $(OUT)/manifest.csv \
	    --split val --device $(DEVICE) > $$run/predictions.csv.partial || exit 1; \
	  mv $$run/predictions.csv.partial $$run/predictions.csv; \
	done
	$(BIN)/ortl-report compare $(foreach b,$(COMPARE),$(OUT)/compare/$(basename $(notdir $(b)))) \
	  -o $(OUT)/comparison --force --sort-by roc_auc

## cv: cross-validated backbone comparison with Snakemake (CV_CONFIG; docs/SCALE.md)
CV_CONFIG ?= workflow/config.yaml
CV_CORES  ?= $(shell nproc)
SNAKEMAKE := .venv-cv/bin/snakemake
cv: build .venv-cv/INSTALLED
	$(SNAKEMAKE) -s workflow/Snakefile --configfile $(CV_CONFIG) --cores $(CV_CORES) $(CV_ARGS)
	@echo "make cv: comparison in $$(awk '/^out:/ { print $$2 }' $(CV_CONFIG))/comparison/comparison.html"

# Snakemake in a cached virtual environment (pinned; re-created only when missing).
.venv-cv/INSTALLED:
	rm -rf .venv-cv
	python3 -m venv .venv-cv
	.venv-cv/bin/pip install --quiet snakemake==9.27.1
	touch $@

## test: unit, numeric and integration tests, the GPU check's CPU self-test and the
## cross-validation workflow (CI runs `make lint` after it)
test: setup .venv-cv/INSTALLED
	$(CARGO) test --workspace
	$(CARGO) build --bins
	GPU_CHECK_BIN=target/debug scripts/gpu-check.sh selftest
	workflow/test.sh $(SNAKEMAKE) target/debug

## lint: rustfmt and clippy over every target, warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## bench: ortl against the tutorial's Keras code and ORT 1.19.2 training (not in CI)
bench: build
	bench/bench.sh

## bench-quick: one short repetition of every workload (smoke check)
bench-quick: build
	bench/bench.sh quick

## gpu-check: on a machine with an NVIDIA GPU, ortl-train on CUDA against PyTorch (docs/GPU.md);
## installs and builds nothing (uses target/release or an unpacked .gpu-pack/bundle)
gpu-check:
	scripts/gpu-check.sh run

## gpu-pack: what a GPU machine without cargo or network needs, in parts of at most 56 MiB
gpu-pack: build setup-cuda
	scripts/gpu-check.sh pack

## fuzz: mutation-fuzz the ONNX, manifest and tensor-set readers (FUZZ_CASES per target; not in CI)
FUZZ_CASES ?= 20000
fuzz:
	ORTL_FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test -p ortl-onnx -p ortl-manifest --test fuzz  # dev profile: overflow checks on

## fixtures: regenerate the bundled synthetic data set (deterministic)
fixtures:
	$(CARGO) run --release -p ortl-fixtures -- -o fixtures

clean:
	rm -rf $(OUT) target .ort
