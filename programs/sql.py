"""sql: one read-only SQL query on the company database, then an answer.

A fast tool (queries take 0.05-5 ms): running the query the moment its string closes cannot
save more than that, so this workload shows that partial execution costs nothing where it
cannot help (the cost model defers such units to the end of the call).
"""

from __future__ import annotations

import json

import sglang as sgl

import sgl_conveyor
from sgl_conveyor.eval.goals import FAST_TOOL
from sgl_conveyor.eval.workload import Workload
from sgl_conveyor.lang.prompting import example_turns

# The standard text-to-SQL prompt: the schema as CREATE TABLE statements (the spec's description
# lists the same tables in prose, which SmolLM2 reads less well).
SCHEMA = """CREATE TABLE departments (id, name, city, budget);
CREATE TABLE employees (id, first_name, last_name, email, department_id, title, salary,
  hire_date, manager_id);
CREATE TABLE customers (id, name, segment, country, city, signup_date);
CREATE TABLE products (id, name, category, price, stock);
CREATE TABLE orders (id, customer_id, employee_id, order_date, status);
CREATE TABLE order_items (order_id, product_id, quantity, unit_price);"""

INTRO = (
    "You answer questions about a company database by writing one SQLite query, as the JSON "
    "arguments of the sql tool. The database:\n" + SCHEMA
)

# Greedy decoding otherwise repeats a condition (`AND x = 1 AND x = 1 ...`) until max_tokens in
# about a third of the tasks.
FREQUENCY_PENALTY = 0.3


# Three more worked queries after the spec's three: plain one-table questions, like most tasks.
MORE_EXAMPLES = [
    (request, json.dumps({"query": query}))
    for request, query in (
        (
            "How many customers signed up in 2022?",
            "SELECT COUNT(*) AS customers FROM customers WHERE signup_date LIKE '2022-%'",
        ),
        (
            "Which products cost more than 500?",
            "SELECT name, price FROM products WHERE price > 500 ORDER BY price DESC",
        ),
        (
            "What is the total budget of all departments?",
            "SELECT SUM(budget) AS total_budget FROM departments",
        ),
    )
]


@sgl.function
def sql_question(s, question, mode=None, task_id=None):
    s += sgl.system(sgl_conveyor.tool_prompt(["sql"], examples=0, intro=INTRO))
    for request, call in [*example_turns("sql"), *MORE_EXAMPLES]:
        s += sgl.user(request)
        s += sgl.assistant(call)
    s += sgl.user(question)
    s += sgl.assistant(
        sgl.partial_tool(
            "sql",
            name="query",
            mode=mode,
            max_tokens=96,
            temperature=0,
            frequency_penalty=FREQUENCY_PENALTY,
        )
    )
    s += sgl.user("Answer the question in one sentence from the rows.")
    s += sgl.assistant(sgl.gen("answer", max_tokens=40, stop="\n", temperature=0))


WORKLOAD = Workload(
    name="sql",
    program=sql_question,
    tasks_path="tasks/sql.jsonl",
    trace_path="traces/sql.jsonl",
    description="one SQL query on the company database (a fast tool: partial execution must "
    "not make it slower), then an answer",
    goals=(FAST_TOOL,),
)
