# The two commands of the set-up contract. See README.md.
.PHONY: run test bootstrap translations

run:
	@scripts/bootstrap.sh run
	@.venv/bin/python -m scripts.run_stack

test:
	@scripts/bootstrap.sh test
	@.venv/bin/python -m pytest $(PYTEST_ARGS)

translations:
	.venv/bin/pybabel extract -F babel.cfg -k _l -o translations/messages.pot --no-location --sort-output --project "Kernel Billing Portal" .
	.venv/bin/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching
	.venv/bin/pybabel compile -d translations --statistics
