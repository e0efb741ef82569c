"""Hand-written tables of real-world entities: the seed of the search corpus and the gazetteer.

Figures are approximate, rounded, written from general knowledge for this project (populations
and market capitalisations around 2024) and not authoritative: they are the ground truth of the
eval only, because answers are checked against the corpus built from them. Text only, no logic.
"""

# ruff: noqa: E501 - table rows are data, one entity per line

from __future__ import annotations

# name | country | population | founded (negative: BC; empty: not stated) | capital (y/n)
CITIES = """
Paris|France|2100000|-250|y
Berlin|Germany|3750000|1237|y
Rome|Italy|2750000|-753|y
Madrid|Spain|3330000|865|y
London|United Kingdom|8900000|47|y
Vienna|Austria|1980000|-15|y
Amsterdam|Netherlands|920000|1275|y
Brussels|Belgium|1220000|979|y
Lisbon|Portugal|550000||y
Prague|Czech Republic|1360000|885|y
Warsaw|Poland|1860000|1300|y
Budapest|Hungary|1700000|1873|y
Athens|Greece|660000||y
Stockholm|Sweden|980000|1252|y
Oslo|Norway|700000|1040|y
Copenhagen|Denmark|650000|1167|y
Helsinki|Finland|660000|1550|y
Dublin|Ireland|590000|841|y
Zurich|Switzerland|420000||n
Munich|Germany|1510000|1158|n
Hamburg|Germany|1850000|808|n
Barcelona|Spain|1640000||n
Milan|Italy|1370000|-600|n
Istanbul|Turkey|15600000|-660|n
Moscow|Russia|13000000|1147|y
Kyiv|Ukraine|2950000|482|y
New York City|United States|8300000|1624|n
Los Angeles|United States|3850000|1781|n
Chicago|United States|2660000|1833|n
Houston|United States|2300000|1836|n
San Francisco|United States|810000|1776|n
Boston|United States|650000|1630|n
Seattle|United States|750000|1851|n
Washington|United States|690000|1790|y
Toronto|Canada|2790000|1793|n
Montreal|Canada|1760000|1642|n
Vancouver|Canada|660000|1886|n
Ottawa|Canada|1020000|1826|y
Mexico City|Mexico|9200000|1325|y
Sao Paulo|Brazil|11450000|1554|n
Rio de Janeiro|Brazil|6210000|1565|n
Buenos Aires|Argentina|3120000|1536|y
Lima|Peru|9700000|1535|y
Bogota|Colombia|7900000|1538|y
Santiago|Chile|6300000|1541|y
Tokyo|Japan|14000000|1457|y
Osaka|Japan|2750000||n
Kyoto|Japan|1460000|794|n
Seoul|South Korea|9400000||y
Beijing|China|21900000||y
Shanghai|China|24900000||n
Hong Kong|China|7500000||n
Singapore|Singapore|5900000|1819|y
Bangkok|Thailand|10500000|1782|y
Jakarta|Indonesia|10600000|1527|y
Manila|Philippines|1850000|1571|y
Delhi|India|16800000||n
Mumbai|India|12400000||n
Bengaluru|India|8400000|1537|n
Karachi|Pakistan|14900000||n
Dhaka|Bangladesh|10300000||y
Tehran|Iran|9000000||y
Cairo|Egypt|10000000|969|y
Lagos|Nigeria|15400000||n
Nairobi|Kenya|4400000|1899|y
Johannesburg|South Africa|5600000|1886|n
Cape Town|South Africa|4700000|1652|n
Casablanca|Morocco|3360000||n
Sydney|Australia|5300000|1788|n
Melbourne|Australia|5100000|1835|n
Auckland|New Zealand|1700000|1840|n
Dubai|United Arab Emirates|3600000|1833|n
Riyadh|Saudi Arabia|7000000||y
"""

# name | capital | continent | population | area_km2 | currency | official language
COUNTRIES = """
France|Paris|Europe|68000000|551695|euro|French
Germany|Berlin|Europe|84000000|357588|euro|German
Italy|Rome|Europe|59000000|301340|euro|Italian
Spain|Madrid|Europe|48000000|505990|euro|Spanish
United Kingdom|London|Europe|67000000|243610|pound sterling|English
Austria|Vienna|Europe|9100000|83879|euro|German
Netherlands|Amsterdam|Europe|17900000|41850|euro|Dutch
Belgium|Brussels|Europe|11700000|30689|euro|Dutch, French and German
Portugal|Lisbon|Europe|10400000|92212|euro|Portuguese
Czech Republic|Prague|Europe|10900000|78871|Czech koruna|Czech
Poland|Warsaw|Europe|37600000|312696|zloty|Polish
Hungary|Budapest|Europe|9600000|93030|forint|Hungarian
Greece|Athens|Europe|10400000|131957|euro|Greek
Sweden|Stockholm|Europe|10500000|450295|Swedish krona|Swedish
Norway|Oslo|Europe|5500000|385207|Norwegian krone|Norwegian
Denmark|Copenhagen|Europe|5900000|42933|Danish krone|Danish
Finland|Helsinki|Europe|5600000|338455|euro|Finnish and Swedish
Ireland|Dublin|Europe|5200000|70273|euro|Irish and English
Switzerland|Bern|Europe|8800000|41285|Swiss franc|German, French, Italian and Romansh
Turkey|Ankara|Asia|85000000|783562|Turkish lira|Turkish
Russia|Moscow|Europe|144000000|17098246|ruble|Russian
Ukraine|Kyiv|Europe|37000000|603628|hryvnia|Ukrainian
United States|Washington|North America|335000000|9833520|US dollar|English
Canada|Ottawa|North America|40000000|9984670|Canadian dollar|English and French
Mexico|Mexico City|North America|129000000|1964375|Mexican peso|Spanish
Brazil|Brasilia|South America|203000000|8515767|real|Portuguese
Argentina|Buenos Aires|South America|46000000|2780400|Argentine peso|Spanish
Peru|Lima|South America|34000000|1285216|sol|Spanish
Colombia|Bogota|South America|52000000|1141748|Colombian peso|Spanish
Chile|Santiago|South America|19600000|756102|Chilean peso|Spanish
Japan|Tokyo|Asia|124000000|377975|yen|Japanese
South Korea|Seoul|Asia|51700000|100210|won|Korean
China|Beijing|Asia|1410000000|9596961|renminbi|Mandarin Chinese
Singapore|Singapore|Asia|5900000|734|Singapore dollar|English, Malay, Mandarin and Tamil
Thailand|Bangkok|Asia|71000000|513120|baht|Thai
Indonesia|Jakarta|Asia|278000000|1904569|rupiah|Indonesian
Philippines|Manila|Asia|114000000|300000|Philippine peso|Filipino and English
India|New Delhi|Asia|1430000000|3287263|Indian rupee|Hindi and English
Pakistan|Islamabad|Asia|240000000|881913|Pakistani rupee|Urdu and English
Bangladesh|Dhaka|Asia|173000000|148460|taka|Bengali
Iran|Tehran|Asia|89000000|1648195|Iranian rial|Persian
Egypt|Cairo|Africa|112000000|1002450|Egyptian pound|Arabic
Nigeria|Abuja|Africa|224000000|923768|naira|English
Kenya|Nairobi|Africa|55000000|580367|Kenyan shilling|Swahili and English
South Africa|Pretoria|Africa|62000000|1221037|rand|eleven official languages
Morocco|Rabat|Africa|37000000|446550|Moroccan dirham|Arabic and Berber
Australia|Canberra|Oceania|26600000|7692024|Australian dollar|English
New Zealand|Wellington|Oceania|5200000|268021|New Zealand dollar|English and Maori
United Arab Emirates|Abu Dhabi|Asia|9500000|83600|UAE dirham|Arabic
Saudi Arabia|Riyadh|Asia|36000000|2149690|Saudi riyal|Arabic
"""

# name | creators | year first appeared | paradigm | typing
LANGUAGES = """
Python|Guido van Rossum|1991|multi-paradigm|dynamic
Java|James Gosling|1995|object-oriented|static
C|Dennis Ritchie|1972|procedural|static
C++|Bjarne Stroustrup|1985|multi-paradigm|static
JavaScript|Brendan Eich|1995|multi-paradigm|dynamic
Ruby|Yukihiro Matsumoto|1995|object-oriented|dynamic
Perl|Larry Wall|1987|multi-paradigm|dynamic
PHP|Rasmus Lerdorf|1995|multi-paradigm|dynamic
Go|Robert Griesemer, Rob Pike and Ken Thompson|2009|concurrent|static
Rust|Graydon Hoare|2010|multi-paradigm|static
Swift|Chris Lattner|2014|multi-paradigm|static
Kotlin|JetBrains|2011|multi-paradigm|static
Scala|Martin Odersky|2004|functional and object-oriented|static
Haskell|a committee of researchers|1990|purely functional|static
Lisp|John McCarthy|1958|functional|dynamic
Fortran|John Backus|1957|procedural|static
COBOL|the CODASYL committee|1959|procedural|static
Pascal|Niklaus Wirth|1970|procedural|static
Smalltalk|Alan Kay|1972|object-oriented|dynamic
Erlang|Joe Armstrong|1986|functional|dynamic
Elixir|Jose Valim|2012|functional|dynamic
Clojure|Rich Hickey|2007|functional|dynamic
Julia|Jeff Bezanson, Stefan Karpinski, Viral Shah and Alan Edelman|2012|multi-paradigm|dynamic
R|Ross Ihaka and Robert Gentleman|1993|functional|dynamic
MATLAB|Cleve Moler|1984|array programming|dynamic
Lua|Roberto Ierusalimschy, Luiz Henrique de Figueiredo and Waldemar Celes|1993|multi-paradigm|dynamic
TypeScript|Anders Hejlsberg|2012|multi-paradigm|static
C#|Anders Hejlsberg|2000|object-oriented|static
Objective-C|Brad Cox and Tom Love|1984|object-oriented|dynamic
Dart|Lars Bak and Kasper Lund|2011|object-oriented|static
OCaml|Xavier Leroy and others|1996|functional|static
Prolog|Alain Colmerauer|1972|logic|dynamic
Ada|Jean Ichbiah|1980|procedural|static
BASIC|John Kemeny and Thomas Kurtz|1964|procedural|dynamic
Simula|Ole-Johan Dahl and Kristen Nygaard|1967|object-oriented|static
Scheme|Guy Steele and Gerald Sussman|1975|functional|dynamic
Tcl|John Ousterhout|1988|multi-paradigm|dynamic
Bash|Brian Fox|1989|scripting|dynamic
SQL|Donald Chamberlin and Raymond Boyce|1974|declarative|static
Elm|Evan Czaplicki|2012|purely functional|static
D|Walter Bright|2001|multi-paradigm|static
Zig|Andrew Kelley|2016|procedural|static
Nim|Andreas Rumpf|2008|multi-paradigm|static
F#|Don Syme|2005|functional|static
Groovy|James Strachan|2003|object-oriented|dynamic
"""

# number | symbol | name | atomic mass (standard, rounded; [n]: mass number of the most stable
# isotope) | category
ELEMENTS = """
1|H|Hydrogen|1.008|reactive nonmetal
2|He|Helium|4.003|noble gas
3|Li|Lithium|6.94|alkali metal
4|Be|Beryllium|9.012|alkaline earth metal
5|B|Boron|10.81|metalloid
6|C|Carbon|12.011|reactive nonmetal
7|N|Nitrogen|14.007|reactive nonmetal
8|O|Oxygen|15.999|reactive nonmetal
9|F|Fluorine|18.998|halogen
10|Ne|Neon|20.18|noble gas
11|Na|Sodium|22.99|alkali metal
12|Mg|Magnesium|24.305|alkaline earth metal
13|Al|Aluminium|26.982|post-transition metal
14|Si|Silicon|28.085|metalloid
15|P|Phosphorus|30.974|reactive nonmetal
16|S|Sulfur|32.06|reactive nonmetal
17|Cl|Chlorine|35.45|halogen
18|Ar|Argon|39.95|noble gas
19|K|Potassium|39.098|alkali metal
20|Ca|Calcium|40.078|alkaline earth metal
21|Sc|Scandium|44.956|transition metal
22|Ti|Titanium|47.867|transition metal
23|V|Vanadium|50.942|transition metal
24|Cr|Chromium|51.996|transition metal
25|Mn|Manganese|54.938|transition metal
26|Fe|Iron|55.845|transition metal
27|Co|Cobalt|58.933|transition metal
28|Ni|Nickel|58.693|transition metal
29|Cu|Copper|63.546|transition metal
30|Zn|Zinc|65.38|transition metal
31|Ga|Gallium|69.723|post-transition metal
32|Ge|Germanium|72.63|metalloid
33|As|Arsenic|74.922|metalloid
34|Se|Selenium|78.971|reactive nonmetal
35|Br|Bromine|79.904|halogen
36|Kr|Krypton|83.798|noble gas
37|Rb|Rubidium|85.468|alkali metal
38|Sr|Strontium|87.62|alkaline earth metal
39|Y|Yttrium|88.906|transition metal
40|Zr|Zirconium|91.224|transition metal
41|Nb|Niobium|92.906|transition metal
42|Mo|Molybdenum|95.95|transition metal
43|Tc|Technetium|[98]|transition metal
44|Ru|Ruthenium|101.07|transition metal
45|Rh|Rhodium|102.906|transition metal
46|Pd|Palladium|106.42|transition metal
47|Ag|Silver|107.868|transition metal
48|Cd|Cadmium|112.414|transition metal
49|In|Indium|114.818|post-transition metal
50|Sn|Tin|118.71|post-transition metal
51|Sb|Antimony|121.76|metalloid
52|Te|Tellurium|127.6|metalloid
53|I|Iodine|126.904|halogen
54|Xe|Xenon|131.293|noble gas
55|Cs|Caesium|132.905|alkali metal
56|Ba|Barium|137.327|alkaline earth metal
57|La|Lanthanum|138.905|lanthanide
58|Ce|Cerium|140.116|lanthanide
59|Pr|Praseodymium|140.908|lanthanide
60|Nd|Neodymium|144.242|lanthanide
61|Pm|Promethium|[145]|lanthanide
62|Sm|Samarium|150.36|lanthanide
63|Eu|Europium|151.964|lanthanide
64|Gd|Gadolinium|157.25|lanthanide
65|Tb|Terbium|158.925|lanthanide
66|Dy|Dysprosium|162.5|lanthanide
67|Ho|Holmium|164.93|lanthanide
68|Er|Erbium|167.259|lanthanide
69|Tm|Thulium|168.934|lanthanide
70|Yb|Ytterbium|173.045|lanthanide
71|Lu|Lutetium|174.967|lanthanide
72|Hf|Hafnium|178.49|transition metal
73|Ta|Tantalum|180.948|transition metal
74|W|Tungsten|183.84|transition metal
75|Re|Rhenium|186.207|transition metal
76|Os|Osmium|190.23|transition metal
77|Ir|Iridium|192.217|transition metal
78|Pt|Platinum|195.084|transition metal
79|Au|Gold|196.967|transition metal
80|Hg|Mercury|200.592|transition metal
81|Tl|Thallium|204.38|post-transition metal
82|Pb|Lead|207.2|post-transition metal
83|Bi|Bismuth|208.98|post-transition metal
84|Po|Polonium|[209]|post-transition metal
85|At|Astatine|[210]|halogen
86|Rn|Radon|[222]|noble gas
87|Fr|Francium|[223]|alkali metal
88|Ra|Radium|[226]|alkaline earth metal
89|Ac|Actinium|[227]|actinide
90|Th|Thorium|232.038|actinide
91|Pa|Protactinium|231.036|actinide
92|U|Uranium|238.029|actinide
93|Np|Neptunium|[237]|actinide
94|Pu|Plutonium|[244]|actinide
95|Am|Americium|[243]|actinide
96|Cm|Curium|[247]|actinide
97|Bk|Berkelium|[247]|actinide
98|Cf|Californium|[251]|actinide
99|Es|Einsteinium|[252]|actinide
100|Fm|Fermium|[257]|actinide
101|Md|Mendelevium|[258]|actinide
102|No|Nobelium|[259]|actinide
103|Lr|Lawrencium|[266]|actinide
104|Rf|Rutherfordium|[267]|transition metal
105|Db|Dubnium|[268]|transition metal
106|Sg|Seaborgium|[269]|transition metal
107|Bh|Bohrium|[270]|transition metal
108|Hs|Hassium|[269]|transition metal
109|Mt|Meitnerium|[278]|unknown properties
110|Ds|Darmstadtium|[281]|unknown properties
111|Rg|Roentgenium|[282]|unknown properties
112|Cn|Copernicium|[285]|unknown properties
113|Nh|Nihonium|[286]|unknown properties
114|Fl|Flerovium|[289]|unknown properties
115|Mc|Moscovium|[290]|unknown properties
116|Lv|Livermorium|[293]|unknown properties
117|Ts|Tennessine|[294]|unknown properties
118|Og|Oganesson|[294]|unknown properties
"""

# name | length_km | mouth | countries (comma separated)
RIVERS = """
Nile|6650|the Mediterranean Sea|Egypt, Sudan, South Sudan, Uganda, Ethiopia
Amazon|6400|the Atlantic Ocean|Brazil, Peru, Colombia
Yangtze|6300|the East China Sea|China
Mississippi|3730|the Gulf of Mexico|United States
Yenisei|3490|the Kara Sea|Russia, Mongolia
Yellow River|5464|the Bohai Sea|China
Ob|3650|the Gulf of Ob|Russia
Parana|4880|the Rio de la Plata|Brazil, Paraguay, Argentina
Congo|4700|the Atlantic Ocean|Democratic Republic of the Congo, Republic of the Congo, Angola
Amur|2824|the Strait of Tartary|Russia, China
Lena|4400|the Laptev Sea|Russia
Mekong|4350|the South China Sea|China, Myanmar, Laos, Thailand, Cambodia, Vietnam
Mackenzie|1738|the Beaufort Sea|Canada
Niger|4180|the Gulf of Guinea|Guinea, Mali, Niger, Benin, Nigeria
Volga|3530|the Caspian Sea|Russia
Danube|2850|the Black Sea|Germany, Austria, Slovakia, Hungary, Croatia, Serbia, Romania, Bulgaria, Moldova, Ukraine
Rhine|1230|the North Sea|Switzerland, Liechtenstein, Austria, Germany, France, Netherlands
Elbe|1094|the North Sea|Czech Republic, Germany
Loire|1006|the Bay of Biscay|France
Seine|777|the English Channel|France
Thames|346|the North Sea|United Kingdom
Tagus|1007|the Atlantic Ocean|Spain, Portugal
Dnieper|2201|the Black Sea|Russia, Belarus, Ukraine
Don|1870|the Sea of Azov|Russia
Vistula|1047|the Baltic Sea|Poland
Oder|742|the Baltic Sea|Czech Republic, Poland, Germany
Po|652|the Adriatic Sea|Italy
Rhone|813|the Mediterranean Sea|Switzerland, France
Ganges|2525|the Bay of Bengal|India, Bangladesh
Indus|3180|the Arabian Sea|China, India, Pakistan
Brahmaputra|2900|the Bay of Bengal|China, India, Bangladesh
Tigris|1850|the Persian Gulf|Turkey, Syria, Iraq
Euphrates|2800|the Persian Gulf|Turkey, Syria, Iraq
Zambezi|2574|the Indian Ocean|Zambia, Angola, Namibia, Botswana, Zimbabwe, Mozambique
Orange|2200|the Atlantic Ocean|Lesotho, South Africa, Namibia
Murray|2508|the Southern Ocean|Australia
Colorado|2330|the Gulf of California|United States, Mexico
Columbia|2000|the Pacific Ocean|Canada, United States
Rio Grande|3051|the Gulf of Mexico|United States, Mexico
Yukon|3190|the Bering Sea|Canada, United States
Orinoco|2140|the Atlantic Ocean|Venezuela, Colombia
Irrawaddy|2170|the Andaman Sea|Myanmar
"""

# name | height_m | range | countries | first ascent (empty: not stated)
MOUNTAINS = """
Mount Everest|8849|Himalayas|Nepal and China|1953
K2|8611|Karakoram|Pakistan and China|1954
Kangchenjunga|8586|Himalayas|Nepal and India|1955
Lhotse|8516|Himalayas|Nepal and China|1956
Makalu|8485|Himalayas|Nepal and China|1955
Cho Oyu|8188|Himalayas|Nepal and China|1954
Dhaulagiri|8167|Himalayas|Nepal|1960
Manaslu|8163|Himalayas|Nepal|1956
Nanga Parbat|8126|Himalayas|Pakistan|1953
Annapurna|8091|Himalayas|Nepal|1950
Aconcagua|6961|Andes|Argentina|1897
Ojos del Salado|6893|Andes|Argentina and Chile|1937
Huascaran|6768|Andes|Peru|1932
Chimborazo|6263|Andes|Ecuador|1880
Denali|6190|Alaska Range|United States|1913
Mount Logan|5959|Saint Elias Mountains|Canada|1925
Kilimanjaro|5895|Eastern Rift|Tanzania|1889
Elbrus|5642|Caucasus|Russia|1874
Pico de Orizaba|5636|Trans-Mexican Volcanic Belt|Mexico|
Damavand|5610|Alborz|Iran|
Mount Kenya|5199|Eastern Rift|Kenya|1899
Mount Ararat|5137|Armenian Highlands|Turkey|1829
Vinson Massif|4892|Sentinel Range|Antarctica|1966
Puncak Jaya|4884|Sudirman Range|Indonesia|1962
Mont Blanc|4806|Alps|France and Italy|1786
Matterhorn|4478|Alps|Switzerland and Italy|1865
Mount Whitney|4421|Sierra Nevada|United States|1873
Mount Elbert|4401|Rocky Mountains|United States|
Mount Rainier|4392|Cascade Range|United States|1870
Grossglockner|3798|Alps|Austria|1800
Mount Fuji|3776|none (a solitary volcano)|Japan|
Aoraki / Mount Cook|3724|Southern Alps|New Zealand|1894
Mount Etna|3357|none (a solitary volcano)|Italy|
Zugspitze|2962|Wetterstein Mountains|Germany and Austria|1820
Mount Olympus|2918|Olympus range|Greece|1913
Triglav|2864|Julian Alps|Slovenia|1778
Mount Kosciuszko|2228|Great Dividing Range|Australia|1840
Ben Nevis|1345|Grampian Mountains|United Kingdom|
Vesuvius|1281|none (a solitary volcano)|Italy|
Table Mountain|1085|Cape Fold Belt|South Africa|
"""

# name | founded | headquarters | founders (empty: not stated) | industry | market cap in billion
# US dollars around 2024 (empty: privately held) | employees
COMPANIES = """
Apple|1976|Cupertino|Steve Jobs, Steve Wozniak and Ronald Wayne|consumer electronics|3400|161000
Microsoft|1975|Redmond|Bill Gates and Paul Allen|software|3100|228000
Alphabet|2015|Mountain View|Larry Page and Sergey Brin|internet services|2100|182000
Amazon|1994|Seattle|Jeff Bezos|e-commerce and cloud computing|1900|1525000
Nvidia|1993|Santa Clara|Jensen Huang, Chris Malachowsky and Curtis Priem|semiconductors|3300|29600
Meta Platforms|2004|Menlo Park|Mark Zuckerberg|social media|1400|67300
Tesla|2003|Austin|Martin Eberhard and Marc Tarpenning|electric vehicles|800|140000
IBM|1911|Armonk||information technology|190|282000
Intel|1968|Santa Clara|Gordon Moore and Robert Noyce|semiconductors|100|125000
Samsung Electronics|1969|Suwon||consumer electronics|350|267000
Sony|1946|Tokyo|Masaru Ibuka and Akio Morita|consumer electronics|120|113000
Toyota|1937|Toyota City|Kiichiro Toyoda|automotive|250|380000
Siemens|1847|Munich|Werner von Siemens|industrial manufacturing|150|320000
SAP|1972|Walldorf|five former IBM employees|software|250|107000
Nestle|1866|Vevey|Henri Nestle|food and beverages|250|270000
Volkswagen|1937|Wolfsburg||automotive|60|680000
Netflix|1997|Los Gatos|Reed Hastings and Marc Randolph|streaming media|300|13000
Oracle|1977|Austin|Larry Ellison, Bob Miner and Ed Oates|software|400|159000
Adobe|1982|San Jose|John Warnock and Charles Geschke|software|230|30000
Salesforce|1999|San Francisco|Marc Benioff|software|280|73000
Cisco|1984|San Jose|Leonard Bosack and Sandy Lerner|networking|200|90000
Coca-Cola|1892|Atlanta|Asa Griggs Candler|beverages|270|79000
PepsiCo|1965|Purchase||food and beverages|230|318000
Walmart|1962|Bentonville|Sam Walton|retail|550|2100000
Nike|1964|Beaverton|Phil Knight and Bill Bowerman|sportswear|120|79000
Disney|1923|Burbank|Walt Disney and Roy O. Disney|entertainment|170|225000
Spotify|2006|Stockholm|Daniel Ek and Martin Lorentzon|streaming media|70|9000
Nokia|1865|Espoo|Fredrik Idestam and Leo Mechelin|telecommunications equipment|20|86000
Ericsson|1876|Stockholm|Lars Magnus Ericsson|telecommunications equipment|20|99000
ASML|1984|Veldhoven||semiconductor equipment|280|42000
TSMC|1987|Hsinchu|Morris Chang|semiconductors|800|76000
Alibaba|1999|Hangzhou|Jack Ma|e-commerce|200|204000
Tencent|1998|Shenzhen|Ma Huateng|internet services|450|105000
Airbus|1970|Leiden||aerospace|120|147000
Boeing|1916|Arlington|William Boeing|aerospace|110|171000
BMW|1916|Munich||automotive|60|155000
IKEA|1943|Delft|Ingvar Kamprad|furniture retail||220000
LEGO|1932|Billund|Ole Kirk Christiansen|toys||27000
Unilever|1929|London||consumer goods|140|128000
Novo Nordisk|1923|Bagsvaerd||pharmaceuticals|450|64000
LVMH|1987|Paris|Bernard Arnault|luxury goods|380|213000
Visa|1958|San Francisco|Dee Hock|payments|550|29000
Mastercard|1966|Purchase||payments|450|33000
"""

# US cities for the news gazetteer: name | state code (two letters)
US_CITIES = """
New York|NY
Los Angeles|CA
Chicago|IL
Houston|TX
Phoenix|AZ
Philadelphia|PA
San Antonio|TX
San Diego|CA
Dallas|TX
San Jose|CA
Austin|TX
Jacksonville|FL
Fort Worth|TX
Columbus|OH
Charlotte|NC
Indianapolis|IN
San Francisco|CA
Seattle|WA
Denver|CO
Washington|DC
Nashville|TN
Oklahoma City|OK
El Paso|TX
Boston|MA
Portland|OR
Las Vegas|NV
Detroit|MI
Memphis|TN
Louisville|KY
Baltimore|MD
Milwaukee|WI
Albuquerque|NM
Tucson|AZ
Fresno|CA
Sacramento|CA
Kansas City|MO
Kansas City|KS
Mesa|AZ
Atlanta|GA
Omaha|NE
Colorado Springs|CO
Raleigh|NC
Long Beach|CA
Virginia Beach|VA
Miami|FL
Oakland|CA
Minneapolis|MN
Tulsa|OK
Bakersfield|CA
Wichita|KS
Arlington|TX
Arlington|VA
Aurora|CO
Aurora|IL
Tampa|FL
New Orleans|LA
Cleveland|OH
Honolulu|HI
Anaheim|CA
Lexington|KY
Stockton|CA
Corpus Christi|TX
Henderson|NV
Riverside|CA
Newark|NJ
Saint Paul|MN
Santa Ana|CA
Cincinnati|OH
Irvine|CA
Orlando|FL
Pittsburgh|PA
St. Louis|MO
Greensboro|NC
Jersey City|NJ
Anchorage|AK
Lincoln|NE
Plano|TX
Durham|NC
Buffalo|NY
Chandler|AZ
Toledo|OH
Madison|WI
Gilbert|AZ
Reno|NV
Fort Wayne|IN
St. Petersburg|FL
Lubbock|TX
Irving|TX
Laredo|TX
Winston-Salem|NC
Chesapeake|VA
Glendale|AZ
Glendale|CA
Garland|TX
Scottsdale|AZ
Norfolk|VA
Boise|ID
Fremont|CA
Spokane|WA
Baton Rouge|LA
Richmond|VA
Richmond|CA
Tacoma|WA
Modesto|CA
Huntsville|AL
Des Moines|IA
Yonkers|NY
Rochester|NY
Rochester|MN
Fayetteville|NC
Fayetteville|AR
Columbus|GA
Worcester|MA
Little Rock|AR
Augusta|GA
Birmingham|AL
Montgomery|AL
Amarillo|TX
Salt Lake City|UT
Grand Rapids|MI
Tallahassee|FL
Sioux Falls|SD
Providence|RI
Vancouver|WA
Knoxville|TN
Akron|OH
Shreveport|LA
Mobile|AL
Fort Lauderdale|FL
Chattanooga|TN
Tempe|AZ
Eugene|OR
Salem|OR
Salem|MA
Springfield|MO
Springfield|IL
Springfield|MA
Clarksville|TN
Rockford|IL
Alexandria|VA
Hartford|CT
Burlington|VT
Portland|ME
Manchester|NH
Wilmington|DE
Wilmington|NC
Charleston|SC
Charleston|WV
Fargo|ND
Billings|MT
Cheyenne|WY
Jackson|MS
Albany|NY
Ann Arbor|MI
Savannah|GA
Santa Fe|NM
Juneau|AK
Berkeley|CA
Pasadena|CA
Boulder|CO
Cambridge|MA
Princeton|NJ
Ithaca|NY
Syracuse|NY
Dayton|OH
Lansing|MI
Flint|MI
Green Bay|WI
Duluth|MN
Bismarck|ND
Pierre|SD
Topeka|KS
Helena|MT
Missoula|MT
Olympia|WA
Bellevue|WA
Asheville|NC
Columbia|SC
Columbia|MO
Athens|GA
Macon|GA
Pensacola|FL
Gainesville|FL
Key West|FL
Galveston|TX
Waco|TX
Flagstaff|AZ
Santa Barbara|CA
Palo Alto|CA
Monterey|CA
Carson City|NV
Provo|UT
Ogden|UT
Cedar Rapids|IA
Iowa City|IA
Peoria|IL
Evansville|IN
Bowling Green|KY
Annapolis|MD
Dover|DE
Concord|NH
Montpelier|VT
Augusta|ME
Bangor|ME
New Haven|CT
Trenton|NJ
Harrisburg|PA
Erie|PA
Scranton|PA
"""

# Places outside the US for the gazetteer, beyond the CITIES above: name | country
WORLD_TOWNS = """
Lyon|France
Marseille|France
Toulouse|France
Nice|France
Bordeaux|France
Cologne|Germany
Frankfurt|Germany
Stuttgart|Germany
Dresden|Germany
Leipzig|Germany
Naples|Italy
Turin|Italy
Florence|Italy
Venice|Italy
Bologna|Italy
Seville|Spain
Valencia|Spain
Bilbao|Spain
Porto|Portugal
Rotterdam|Netherlands
Utrecht|Netherlands
Antwerp|Belgium
Ghent|Belgium
Geneva|Switzerland
Basel|Switzerland
Bern|Switzerland
Salzburg|Austria
Graz|Austria
Krakow|Poland
Gdansk|Poland
Brno|Czech Republic
Gothenburg|Sweden
Malmo|Sweden
Bergen|Norway
Aarhus|Denmark
Tampere|Finland
Cork|Ireland
Manchester|United Kingdom
Birmingham|United Kingdom
Edinburgh|United Kingdom
Glasgow|United Kingdom
Liverpool|United Kingdom
Bristol|United Kingdom
Cambridge|United Kingdom
Oxford|United Kingdom
Thessaloniki|Greece
Ankara|Turkey
Izmir|Turkey
Saint Petersburg|Russia
Lviv|Ukraine
Odesa|Ukraine
Calgary|Canada
Edmonton|Canada
Quebec City|Canada
Winnipeg|Canada
Halifax|Canada
Guadalajara|Mexico
Monterrey|Mexico
Brasilia|Brazil
Salvador|Brazil
Cordoba|Argentina
Rosario|Argentina
Medellin|Colombia
Valparaiso|Chile
Cusco|Peru
Yokohama|Japan
Sapporo|Japan
Nagoya|Japan
Fukuoka|Japan
Busan|South Korea
Incheon|South Korea
Guangzhou|China
Shenzhen|China
Chengdu|China
Wuhan|China
Hangzhou|China
Chiang Mai|Thailand
Surabaya|Indonesia
Bandung|Indonesia
Cebu City|Philippines
Kolkata|India
Chennai|India
Hyderabad|India
Pune|India
Lahore|Pakistan
Islamabad|Pakistan
Chittagong|Bangladesh
Isfahan|Iran
Alexandria|Egypt
Giza|Egypt
Abuja|Nigeria
Kano|Nigeria
Mombasa|Kenya
Durban|South Africa
Pretoria|South Africa
Marrakesh|Morocco
Rabat|Morocco
Brisbane|Australia
Perth|Australia
Adelaide|Australia
Canberra|Australia
Wellington|New Zealand
Christchurch|New Zealand
Abu Dhabi|United Arab Emirates
Jeddah|Saudi Arabia
"""

# US states and DC: name | two-letter code (for "City, ST" and "City, State" forms)
US_STATES = """
Alabama|AL
Alaska|AK
Arizona|AZ
Arkansas|AR
California|CA
Colorado|CO
Connecticut|CT
Delaware|DE
District of Columbia|DC
Florida|FL
Georgia|GA
Hawaii|HI
Idaho|ID
Illinois|IL
Indiana|IN
Iowa|IA
Kansas|KS
Kentucky|KY
Louisiana|LA
Maine|ME
Maryland|MD
Massachusetts|MA
Michigan|MI
Minnesota|MN
Mississippi|MS
Missouri|MO
Montana|MT
Nebraska|NE
Nevada|NV
New Hampshire|NH
New Jersey|NJ
New Mexico|NM
New York|NY
North Carolina|NC
North Dakota|ND
Ohio|OH
Oklahoma|OK
Oregon|OR
Pennsylvania|PA
Rhode Island|RI
South Carolina|SC
South Dakota|SD
Tennessee|TN
Texas|TX
Utah|UT
Vermont|VT
Virginia|VA
Washington|WA
West Virginia|WV
Wisconsin|WI
Wyoming|WY
"""


def rows(table: str) -> list[list[str]]:
    """The rows of a table above, split on '|'."""
    return [line.split("|") for line in table.strip().splitlines()]
