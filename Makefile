# ortl — the whole experiment and the tests, from a fresh clone.
#   make all    split -> augment -> train -> infer -> report on the bundled fixtures (CPU)
#   make test   every test (installs what it needs first)
#   make compare  the backbone comparison (COMPARE) on the same split and tensors
#   make all TUTORIAL=1 DATA=~/tb   the Keras tutorial's experiment on your data: ResNet50 with
#                                  ImageNet weights (downloaded once), its augmentation, head and
#                                  schedule; `make compare TUTORIAL=1 DATA=~/tb` its comparison
#                                  of seven backbones, each with ImageNet weights
# Variables (override on the command line: make all DATA=~/tb-xray SIZE=224x224):
ifeq ($(TUTORIAL),1)
BACKBONE ?= resnet50
WEIGHTS  ?= imagenet
COPIES   ?= 10
AUGMENT  ?= --preset tutorial
EPOCHS   ?= 100
TRAIN    ?= --preset tutorial
COMPARE  ?= resnet50 inception_resnet_v2 mobilenet_v2 efficientnet_b0 densenet201 inception_v3 vgg19
endif
DATA     ?= fixtures/xray
# A label table instead of class folders (ortl-split --labels; DATA is then its images
# folder), and extra flags of the split: the table's columns, grouping by patient, e.g.
#   make all LABELS=stage_2_train_labels.csv DATA=stage_2_train_images \
#     SPLIT="--path-column patientId --path-suffix .dcm --label-column Target --group-by patientId"
LABELS   ?=
SPLIT    ?=
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
# Pretrained weights for built-in backbones (ortl-train --weights): imagenet (ortl's pinned
# sources, downloaded once into the model cache: ortl-weights sources), hf:ORG/REPO[:FILE]
# or FILE.safetensors; empty: random initialisation. An .onnx backbone brings its own.
WEIGHTS  ?=
TRAIN    ?= --optimizer adamw --lr 3e-3 --weight-decay 1e-3 --schedule cosine
# make compare: the tutorial's closing comparison, one run per backbone on the same tensors.
# The defaults are the reduced members (minutes on CPU); the published networks are
# COMPARE='resnet50 inception_resnet_v2 mobilenet_v2 efficientnet_b0 densenet201 inception_v3 vgg19'.
COMPARE  ?= resnet-mini inception-resnet-mini mobilenet-mini efficientnet-mini densenet-mini \
            inception-mini vgg-mini

# Extra flags of the last two stages (e.g. INFER='--tta flip', REPORT='--bootstrap 5000').
INFER    ?=
THRESHOLD_RULE ?= youden
REPORT   ?=
CARGO    ?= cargo
# The cargo profile the pipeline's binaries come from (make test runs it on PROFILE=dev).
PROFILE  ?= release

# With a test split (TEST > 0), the test images are classified too, and the report scores
# them at the threshold chosen on the validation predictions (never on themselves).
HAS_TEST := $(shell awk 'BEGIN { print ($(TEST) > 0) ? "yes" : "" }')
# Whether the split made a multi-label manifest (y_<finding> columns); read when a recipe
# that asks is expanded, after the split has run. A multi-label run decides each finding on
# the test split at the threshold THRESHOLD_RULE picks on validation (ortl-infer
# --threshold-rule: youden, sensitivity=S or specificity=S), which the test predictions
# carry; the report has no heatmap gallery for findings yet, so none are drawn for it
# (ortl-infer --cam DIR --cam-class FINDING draws them).
MULTILABEL = $(shell head -1 '$(OUT)/manifest.csv' 2>/dev/null | grep -q '\(^\|,\)y_' && echo yes)
BIN      := target/$(if $(filter dev,$(PROFILE)),debug,$(PROFILE))
ORT_LIB  := .ort/libonnxruntime.so.1.31.1
export ORT_DYLIB_PATH ?= $(CURDIR)/$(ORT_LIB)

.PHONY: FORCE all setup setup-cuda build split augment train infer report compare cv test lint bench bench-quick gpu-check gpu-pack fuzz fixtures tour clean distclean

# ---- The pipeline as a build graph --------------------------------------------------------
# Each stage's target is the file it writes last, with its real prerequisites: the previous
# stage's output, its binary, and a stamp holding its settings, so that a stage runs again
# only when one of those changed (and then with --force, replacing an output whose inputs
# changed). `make -n` shows what would run.
#
# Stamps live in $(OUT)/.make/ and are rewritten, at parse time, only when their text
# changes: a changed EPOCHS makes train.settings newer than run/train.json. The data stamp
# holds a digest of every path, size and modification time under $(DATA), so an added,
# removed or touched image re-runs the split (file names with spaces are fine: they never
# become make prerequisites).
STAMPS := $(OUT)/.make
# $(call stamp,NAME,TEXT): the stamp's path, after writing TEXT into it if it differs.
# Under `make -n` nothing is written: a stamp whose text differs is made out of date instead
# (a FORCE prerequisite), so a dry run shows what would run and changes nothing.
stamp_differs = $(shell t='$(subst ','\'',$2)'; [ -f '$(STAMPS)/$1' ] && [ "$$(cat '$(STAMPS)/$1')" = "$$t" ] || echo differs)
ifneq ($(findstring n,$(firstword -$(MAKEFLAGS))),)
stamp = $(if $(call stamp_differs,$1,$2),$(eval $(STAMPS)/$1: FORCE ; @:))$(STAMPS)/$1
else
stamp = $(shell mkdir -p '$(STAMPS)' && t='$(subst ','\'',$2)' && \
  { [ -f '$(STAMPS)/$1' ] && [ "$$(cat '$(STAMPS)/$1')" = "$$t" ] || printf '%s\n' "$$t" > '$(STAMPS)/$1'; } \
  && echo '$(STAMPS)/$1')
endif
FORCE:
# Goals that never read the stamps compute none (make test, lint, clean … touch no $(OUT)).
NO_PIPELINE := setup setup-cuda build cv test lint bench bench-quick gpu-check gpu-pack fuzz fixtures tour clean distclean
ifneq ($(filter-out $(NO_PIPELINE),$(or $(MAKECMDGOALS),all)),)
# The binaries are built before make reads the graph (a no-op when nothing changed): cargo
# alone knows which binaries a source change reaches, and relinks only those, so a stage
# re-runs only when its own binary changed, and `make -n` is exact (it builds, then shows).
ifneq ($(shell $(CARGO) build --profile $(PROFILE) --bins >&2 && echo built),built)
$(error cargo build failed (above))
endif
ifeq ($(shell awk 'BEGIN { print ($(VAL) > 0) ? "yes" : "" }'),)
$(error VAL=$(VAL) leaves no validation images to choose the best epoch by and to evaluate; use VAL > 0, e.g. VAL=0.2)
endif
# -L: a DATA that is a symlink, or images that are, count by what they point to.
DATA_STAMP := $(call stamp,data,$(shell find -L '$(DATA)/' -printf '%P\t%s\t%T@\n' 2>/dev/null | LC_ALL=C sort | sha256sum))
SPLIT_STAMP := $(call stamp,split.settings,$(DATA) $(LABELS) --val $(VAL) --test $(TEST) --seed $(SEED) $(SPLIT))
AUGMENT_STAMP := $(call stamp,augment.settings,--size $(SIZE) --copies $(COPIES) --seed $(SEED) $(AUGMENT))
TRAIN_STAMP := $(call stamp,train.settings,--backbone $(BACKBONE) --weights $(WEIGHTS) --epochs $(EPOCHS) --device $(DEVICE) --seed $(SEED) $(TRAIN))
COMPARE_STAMP := $(call stamp,compare.settings,--weights $(WEIGHTS) --epochs $(EPOCHS) --device $(DEVICE) --seed $(SEED) $(TRAIN))
COMPARE_RUNS_STAMP := $(call stamp,compare.runs,$(COMPARE))
INFER_STAMP := $(call stamp,infer.settings,--device $(DEVICE) $(INFER) --threshold-rule $(THRESHOLD_RULE))
REPORT_STAMP := $(call stamp,report.settings,$(REPORT))
endif

# make all's closing lines: a multi-label run's AUCs from the report, else accuracies.
summary_multilabel = awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$$i] = i; next } \
	  $$col["scope"] == "macro" { macro = $$col["roc_auc"] } $$col["scope"] == "micro" { micro = $$col["roc_auc"] } \
	  END { printf "make all: %s ROC AUC over the findings %.3f macro, %.3f micro; each finding in $(OUT)/report/metrics.csv\n", "$(if $(HAS_TEST),test (thresholds chosen on validation),validation)", macro, micro }' $(OUT)/report/metrics.csv
summary_accuracy = awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$$i] = i; next } \
	  { n++; if ($$2 == $$4) c++; model = $$col["model"]; epoch = $$col["model_epoch"] } \
	  END { printf "make all: validation accuracy of %s (epoch %s) %.3f (%d/%d)\n", model, epoch, c / n, c, n }' $(OUT)/predictions.csv \
	  $(if $(HAS_TEST),&& $(summary_test_accuracy))
summary_test_accuracy = awk -F, 'NR > 1 { n++; if ($$2 == $$4) c++ } END { printf "make all: test accuracy %.3f (%d/%d); the report scores the test split at the threshold chosen on validation\n", c / n, c, n }' $(OUT)/predictions-test.csv

all: report
	@$(if $(MULTILABEL),$(summary_multilabel),$(summary_accuracy))
	@echo "make all: model in $(OUT)/run/, predictions in $(OUT)/predictions.csv, report in $(OUT)/report/report.html"

## setup: the ONNX Runtime C library from the pinned PyPI wheel (CPU), into .ort/
setup: .ort/INSTALLED
.ort/INSTALLED: scripts/setup-ort.sh
	scripts/setup-ort.sh cpu

## setup-cuda: the same from onnxruntime-gpu, adding the CUDA execution provider
setup-cuda:
	scripts/setup-ort.sh cuda

build: .ort/INSTALLED
	$(CARGO) build --profile $(PROFILE) --bins

split: $(OUT)/manifest.csv
$(OUT)/manifest.csv: $(BIN)/ortl-split $(DATA_STAMP) $(SPLIT_STAMP) $(LABELS) | .ort/INSTALLED
	$(BIN)/ortl-split $(if $(LABELS),--labels '$(LABELS)' --images,) '$(DATA)' \
	  --val $(VAL) --test $(TEST) --seed $(SEED) $(SPLIT) -o $@ --force

augment: $(OUT)/tensors/meta.json
$(OUT)/tensors/meta.json: $(OUT)/manifest.csv $(BIN)/ortl-augment $(AUGMENT_STAMP)
	$(BIN)/ortl-augment $< -o $(OUT)/tensors --force \
	  --size $(SIZE) --copies $(COPIES) --seed $(SEED) $(AUGMENT)

# --weights for a built-in backbone (a local weights file is a prerequisite too); none for an
# .onnx backbone, local or on a hub, which brings its own.
weights_for = $(if $(and $(WEIGHTS),$(filter-out %.onnx,$(1))),--weights $(WEIGHTS))
WEIGHTS_FILE := $(filter-out imagenet ImageNet IMAGENET Imagenet hf:%,$(WEIGHTS))

train: $(OUT)/run/train.json
$(OUT)/run/train.json: $(OUT)/tensors/meta.json $(BIN)/ortl-train $(TRAIN_STAMP) $(filter-out hf:%,$(filter %.onnx,$(BACKBONE))) $(WEIGHTS_FILE)
	$(BIN)/ortl-train $(OUT)/tensors -o $(OUT)/run --force --backbone $(BACKBONE) \
	  $(call weights_for,$(BACKBONE)) --epochs $(EPOCHS) --device $(DEVICE) --seed $(SEED) $(TRAIN)

# The evaluated model: best.onnx when the run has one, else model.onnx (the script says why).
evaluated = $$(scripts/evaluated-model.sh $(1))

infer: $(OUT)/predictions.csv
$(OUT)/predictions.csv: $(OUT)/run/train.json $(OUT)/manifest.csv $(BIN)/ortl-infer $(INFER_STAMP)
	$(BIN)/ortl-infer --model $(call evaluated,$(OUT)/run) --manifest $(OUT)/manifest.csv --split val \
	  --device $(DEVICE) $(if $(MULTILABEL),,--cam $(OUT)/cams) --force $(INFER) -o $@
	cp $@ $(OUT)/run/predictions.csv  # so 'ortl-report compare' finds it
ifneq ($(HAS_TEST),)
infer: $(OUT)/predictions-test.csv
$(OUT)/predictions-test.csv: $(OUT)/predictions.csv
	$(BIN)/ortl-infer --model $(call evaluated,$(OUT)/run) --manifest $(OUT)/manifest.csv --split test \
	  --device $(DEVICE) $(if $(MULTILABEL),,--cam $(OUT)/cams-test) --force \
	  $(if $(MULTILABEL),--threshold-from $(OUT)/predictions.csv --threshold-rule $(THRESHOLD_RULE)) $(INFER) -o $@
endif

report: $(OUT)/report/report.html
ifneq ($(HAS_TEST),)
$(OUT)/report/report.html: $(OUT)/predictions-test.csv $(BIN)/ortl-report $(REPORT_STAMP)
	$(BIN)/ortl-report --predictions $< --run $(OUT)/run -o $(OUT)/report --force \
	  $(if $(MULTILABEL),,--threshold-from $(OUT)/predictions.csv --cams $(OUT)/cams-test) $(REPORT)
else
$(OUT)/report/report.html: $(OUT)/predictions.csv $(BIN)/ortl-report $(REPORT_STAMP)
	$(BIN)/ortl-report --predictions $< --run $(OUT)/run \
	  $(if $(MULTILABEL),,--cams $(OUT)/cams) -o $(OUT)/report --force $(REPORT)
endif

## compare: train, infer and evaluate every backbone in COMPARE, then compare the runs;
## each run is its own target, so adding a backbone trains only that one
# The run folder of a COMPARE entry: its name, its file's, or for a hub file
# (hf:ORG/REPO[@REV]:FILE.onnx) its repository's: file names on a hub repeat (model.onnx).
hub_repo = $(notdir $(firstword $(subst @, ,$(firstword $(subst :, ,$(patsubst hf:%,%,$(1)))))))
run_name = $(if $(filter hf:%,$(1)),$(call hub_repo,$(1)),$(basename $(notdir $(1))))
COMPARE_RUNS := $(foreach b,$(COMPARE),$(OUT)/compare/$(call run_name,$(b)))
ifneq ($(words $(COMPARE_RUNS)),$(words $(sort $(COMPARE_RUNS))))
$(error COMPARE names two backbones with one run folder name ($(COMPARE)); give each file a distinct name)
endif
compare: $(OUT)/comparison/comparison.html
# One rule per backbone (a COMPARE entry may be a path to an .onnx file, itself a prerequisite).
define compare_run
$(OUT)/compare/$(call run_name,$(1))/train.json: $(OUT)/tensors/meta.json $(BIN)/ortl-train $(COMPARE_STAMP) $(filter-out hf:%,$(filter %.onnx,$(1))) $(WEIGHTS_FILE)
	$(BIN)/ortl-train $(OUT)/tensors -o $$(@D) --force --backbone $(1) \
	  $(call weights_for,$(1)) --epochs $(EPOCHS) --device $(DEVICE) --seed $(SEED) $(TRAIN)
endef
$(foreach b,$(COMPARE),$(eval $(call compare_run,$(b))))
$(OUT)/compare/%/predictions.csv: $(OUT)/compare/%/train.json $(OUT)/manifest.csv $(BIN)/ortl-infer $(INFER_STAMP)
	$(BIN)/ortl-infer --model $(call evaluated,$(@D)) --manifest $(OUT)/manifest.csv \
	  --split val --device $(DEVICE) $(INFER) -o $@
$(OUT)/comparison/comparison.html: $(addsuffix /predictions.csv,$(COMPARE_RUNS)) $(BIN)/ortl-report $(COMPARE_RUNS_STAMP)
	$(BIN)/ortl-report compare $(COMPARE_RUNS) -o $(OUT)/comparison --force --sort-by roc_auc

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

# scikit-learn, to check the report's multi-label AUCs against (make test only; pinned).
.venv-sklearn/INSTALLED:
	rm -rf .venv-sklearn
	python3 -m venv .venv-sklearn
	.venv-sklearn/bin/pip install --quiet scikit-learn==1.9.1
	touch $@

## test: unit, numeric and integration tests (DICOM decoding against pydicom's test files
## among them), the GPU check's CPU self-test, the cross-validation workflow, this
## Makefile's build graph, and multi-label label tables end to end with the report's AUCs
## against scikit-learn's (CI runs `make lint` after it)
test: setup .venv-cv/INSTALLED .venv-sklearn/INSTALLED
	scripts/fetch-dicom-corpus.sh
	ORTL_DICOM_CORPUS=$(CURDIR)/.cache/dicom-corpus $(CARGO) test --workspace
	$(CARGO) build --bins
	GPU_CHECK_BIN=target/debug scripts/gpu-check.sh selftest
	workflow/test.sh $(SNAKEMAKE) target/debug
	scripts/test-makefile.sh target/debug
	scripts/test-multilabel.sh target/debug .venv-sklearn/bin/python

## lint: rustfmt and clippy over every target, warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## bench: ortl against the tutorial's Keras code, PyTorch eager on the CPU, ORT 1.19.2 training
## and the Python inference pipeline a user writes (PIL + ONNX Runtime) (not in CI)
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

## fuzz: mutation-fuzz the ONNX, manifest, tensor-set and DICOM readers (FUZZ_CASES per target; not in CI)
FUZZ_CASES ?= 20000
fuzz:
	ORTL_FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test -p ortl-onnx -p ortl-manifest --test fuzz  # dev profile: overflow checks on
	ORTL_FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test -p ortl-imaging --test dicom_hostile

## tour: re-run the README's tour of the stages on the fixtures (its console excerpts)
tour: build
	scripts/readme-tour.sh

## fixtures: regenerate the bundled synthetic data set (deterministic)
fixtures:
	$(CARGO) run --release -p ortl-fixtures -- -o fixtures --tables --force

## clean: the pipeline's outputs ($(OUT)); distclean also the builds, ONNX Runtime and the
## DICOM corpus
clean:
	rm -rf $(OUT)
distclean: clean
	rm -rf target .ort .venv-cv .venv-sklearn .cache
