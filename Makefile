# Shortcuts; the README's commands are scripts/run and scripts/test.
.PHONY: run test translations

run:
	@scripts/run

test:
	@scripts/test $(PYTEST_ARGS)

translations:
	.venv/bin/pybabel extract -F babel.cfg -k _l -o translations/messages.pot --no-location --sort-output --project "Kernel Billing Portal" .
	.venv/bin/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching
	.venv/bin/pybabel compile -d translations --statistics
