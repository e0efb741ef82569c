"""Generates the SQL workload's database as a text dump: sql/company.sql (schema and rows).

A small company: departments, employees, customers, products, orders and order items, drawn
from a seeded generator. The `sql` tool builds a SQLite file from this dump in its cache; the
dump is the committed source of truth. Deterministic; never downloads.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

SEED = 20240315
OUT = Path(__file__).with_name("sql") / "company.sql"

SCHEMA = """\
CREATE TABLE departments (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  city TEXT NOT NULL,
  budget INTEGER NOT NULL
);
CREATE TABLE employees (
  id INTEGER PRIMARY KEY,
  first_name TEXT NOT NULL,
  last_name TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE,
  department_id INTEGER NOT NULL REFERENCES departments(id),
  title TEXT NOT NULL,
  salary INTEGER NOT NULL,
  hire_date TEXT NOT NULL,
  manager_id INTEGER REFERENCES employees(id)
);
CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  segment TEXT NOT NULL,
  country TEXT NOT NULL,
  city TEXT NOT NULL,
  signup_date TEXT NOT NULL
);
CREATE TABLE products (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  category TEXT NOT NULL,
  price REAL NOT NULL,
  stock INTEGER NOT NULL
);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers(id),
  employee_id INTEGER NOT NULL REFERENCES employees(id),
  order_date TEXT NOT NULL,
  status TEXT NOT NULL
);
CREATE TABLE order_items (
  order_id INTEGER NOT NULL REFERENCES orders(id),
  product_id INTEGER NOT NULL REFERENCES products(id),
  quantity INTEGER NOT NULL,
  unit_price REAL NOT NULL,
  PRIMARY KEY (order_id, product_id)
);
CREATE INDEX employees_department ON employees(department_id);
CREATE INDEX orders_customer ON orders(customer_id);
CREATE INDEX orders_date ON orders(order_date);
"""


def _words(text: str) -> list[str]:
    return text.split()


DEPARTMENTS = [
    ("Engineering", "Berlin", 4_200_000, ["Software Engineer", "Senior Software Engineer"]),
    ("Sales", "London", 2_600_000, ["Account Executive", "Sales Representative"]),
    ("Marketing", "Paris", 1_500_000, ["Marketing Specialist", "Content Writer"]),
    ("Finance", "Zurich", 1_100_000, ["Accountant", "Financial Analyst"]),
    ("Human Resources", "Dublin", 700_000, ["HR Specialist", "Recruiter"]),
    ("Support", "Lisbon", 900_000, ["Support Agent", "Support Engineer"]),
    ("Research", "Munich", 2_000_000, ["Research Scientist", "Data Scientist"]),
    ("Operations", "Warsaw", 1_200_000, ["Operations Analyst", "Logistics Coordinator"]),
]
BASE_SALARY = {
    "Engineering": 78_000,
    "Sales": 58_000,
    "Marketing": 55_000,
    "Finance": 66_000,
    "Human Resources": 52_000,
    "Support": 45_000,
    "Research": 82_000,
    "Operations": 50_000,
}
FIRST = _words(
    """Ada Alan Alice Amir Ana Anna Ben Carla Carlos Chen Clara David Diego Elena Emma Eva Felix
Fatima Grace Hana Hugo Ines Ivan Jan Jonas Julia Kai Kenji Lara Leo Lina Luca Maria Marta Max Mia
Nina Noah Olga Omar Paul Priya Rosa Sam Sara Sofia Tom Vera Yuki Zoe"""
)
LAST = _words(
    """Adler Baker Becker Costa Duarte Evans Fischer Garcia Hansen Ito Jensen Kowalski Kumar Lang
Larsen Lopez Meyer Moreau Murphy Nagy Novak Olsen Perez Petrov Rossi Santos Schmidt Silva Smith
Tanaka Torres Varga Wagner Weber Wilson Young Zimmer"""
)
PRODUCTS = [
    ("Laptop Pro 14", "Hardware", 1499.0),
    ("Laptop Air 13", "Hardware", 1099.0),
    ("Desktop Tower", "Hardware", 1299.0),
    ("Monitor 27in", "Hardware", 329.0),
    ("Monitor 32in", "Hardware", 479.0),
    ("Docking Station", "Accessories", 189.0),
    ("Wireless Mouse", "Accessories", 39.0),
    ("Mechanical Keyboard", "Accessories", 119.0),
    ("USB-C Cable", "Accessories", 19.0),
    ("Webcam HD", "Accessories", 89.0),
    ("Headset", "Accessories", 149.0),
    ("Laptop Sleeve", "Accessories", 35.0),
    ("Office Suite License", "Software", 249.0),
    ("Antivirus Subscription", "Software", 59.0),
    ("Design Suite License", "Software", 599.0),
    ("Database License", "Software", 1899.0),
    ("Backup Service", "Services", 120.0),
    ("On-site Installation", "Services", 350.0),
    ("Extended Warranty", "Services", 199.0),
    ("Training Day", "Services", 900.0),
    ("Cloud Storage 1TB", "Services", 99.0),
    ("Network Switch", "Hardware", 259.0),
    ("Wireless Router", "Hardware", 179.0),
    ("Tablet 11", "Hardware", 649.0),
    ("Smartphone X", "Hardware", 899.0),
    ("Printer Laser", "Hardware", 399.0),
    ("Toner Cartridge", "Accessories", 79.0),
    ("External SSD 1TB", "Hardware", 129.0),
    ("Server Rack Unit", "Hardware", 2899.0),
    ("Support Plan Gold", "Services", 1500.0),
]
COUNTRIES = [
    ("Germany", ["Berlin", "Hamburg", "Munich", "Cologne"]),
    ("France", ["Paris", "Lyon", "Marseille"]),
    ("United Kingdom", ["London", "Manchester", "Edinburgh"]),
    ("Spain", ["Madrid", "Barcelona", "Valencia"]),
    ("Italy", ["Rome", "Milan", "Turin"]),
    ("Netherlands", ["Amsterdam", "Rotterdam"]),
    ("Poland", ["Warsaw", "Krakow"]),
    ("United States", ["New York", "Chicago", "Austin", "Seattle"]),
    ("Canada", ["Toronto", "Vancouver"]),
    ("Japan", ["Tokyo", "Osaka"]),
]
CUSTOMER_WORDS = _words(
    """Acme Alpine Apex Atlas Beacon Birch Cedar Cobalt Crest Delta Ember Falcon
Granite Harbor Helix Horizon Iris Juniper Keystone Lumen Maple Meridian Nova Oak Orbit
Pioneer Quartz Raven
Ridge Sage Sierra Summit Tidal Vertex Willow Zenith"""
)
CUSTOMER_KINDS = ["Logistics", "Clinic", "Bakery", "Studio", "Consulting", "Foods", "Motors"]
CUSTOMER_KINDS += ["Architects", "Labs", "Outfitters", "Media", "Legal", "Dental", "Hotels"]
SEGMENTS = [("small business", 0.5), ("enterprise", 0.2), ("consumer", 0.3)]
STATUSES = [("delivered", 0.7), ("shipped", 0.12), ("pending", 0.08), ("cancelled", 0.1)]

N_EMPLOYEES = 120
N_CUSTOMERS = 150
N_ORDERS = 800


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([w[0] for w in weighted], [w[1] for w in weighted])[0]


def _date(rng: random.Random, first: dt.date, last: dt.date) -> str:
    return (first + dt.timedelta(days=rng.randint(0, (last - first).days))).isoformat()


def _sql(v: object) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def _inserts(table: str, rows: list[tuple]) -> str:
    out = []
    for i in range(0, len(rows), 100):
        chunk = rows[i : i + 100]
        values = ",\n".join("(" + ", ".join(_sql(v) for v in r) + ")" for r in chunk)
        out.append(f"INSERT INTO {table} VALUES\n{values};\n")
    return "".join(out)


def build() -> str:
    rng = random.Random(SEED)
    departments = [(i + 1, d[0], d[1], d[2]) for i, d in enumerate(DEPARTMENTS)]

    employees: list[tuple] = []
    emails: set[str] = set()
    heads: dict[int, int] = {}
    for n in range(N_EMPLOYEES):
        dept = n % len(DEPARTMENTS) if n < len(DEPARTMENTS) else rng.randrange(len(DEPARTMENTS))
        name, _, _, titles = DEPARTMENTS[dept]
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first}.{last}".lower()
        k = 2
        while email in emails:
            email, k = f"{first}.{last}{k}".lower(), k + 1
        emails.add(email)
        eid = n + 1
        if dept + 1 not in heads:
            heads[dept + 1] = eid
            title, manager = f"Head of {name}", None
            salary = BASE_SALARY[name] * 2
        else:
            title, manager = rng.choice(titles), heads[dept + 1]
            salary = BASE_SALARY[name] + rng.randint(-8, 30) * 1000
        hired = _date(rng, dt.date(2012, 1, 1), dt.date(2024, 6, 30))
        employees.append(
            (eid, first, last, f"{email}@example.com", dept + 1, title, salary, hired, manager)
        )

    customers: list[tuple] = []
    names: set[str] = set()
    for n in range(N_CUSTOMERS):
        name = f"{rng.choice(CUSTOMER_WORDS)} {rng.choice(CUSTOMER_KINDS)}"
        while name in names:
            name = f"{rng.choice(CUSTOMER_WORDS)} {rng.choice(CUSTOMER_KINDS)}"
        names.add(name)
        country, cities = rng.choice(COUNTRIES)
        signup = _date(rng, dt.date(2019, 1, 1), dt.date(2024, 3, 31))
        customers.append((n + 1, name, _pick(rng, SEGMENTS), country, rng.choice(cities), signup))

    products = [
        (i + 1, name, cat, price, rng.randint(0, 400))
        for i, (name, cat, price) in enumerate(PRODUCTS)
    ]
    sellers = [e[0] for e in employees if e[4] == 2]  # the Sales department

    orders: list[tuple] = []
    items: list[tuple] = []
    for n in range(N_ORDERS):
        oid = n + 1
        cust = rng.randint(1, N_CUSTOMERS)
        date = _date(rng, dt.date(2023, 1, 1), dt.date(2024, 6, 30))
        orders.append((oid, cust, rng.choice(sellers), date, _pick(rng, STATUSES)))
        for pid in sorted(rng.sample(range(1, len(PRODUCTS) + 1), rng.randint(1, 4))):
            price = PRODUCTS[pid - 1][2]
            discount = rng.choice([1.0, 1.0, 1.0, 0.95, 0.9])
            items.append((oid, pid, rng.randint(1, 12), round(price * discount, 2)))

    header = (
        "-- The sql workload's database: a small company. Generated by eval/data/gen_sql.py;\n"
        "-- do not edit by hand.\n"
    )
    return (
        header
        + SCHEMA
        + _inserts("departments", departments)
        + _inserts("employees", employees)
        + _inserts("customers", customers)
        + _inserts("products", products)
        + _inserts("orders", orders)
        + _inserts("order_items", items)
    )


def main(out: Path = OUT) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build())
    return out


if __name__ == "__main__":
    print(main())
