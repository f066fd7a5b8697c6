"""Fixed vocabularies of the generated company: names, titles, picklists, regions, funnel rates.

Kept apart from the generator so the numbers that shape the demo can be read in one place.
"""

from __future__ import annotations

from typing import Any


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony "
    "Betty Mark Sandra Steven Ashley Paul Kimberly Andrew Emily Joshua Donna Kevin Michelle "
    "Brian Carol George Amanda Timothy Melissa Ronald Deborah Jason Stephanie Ryan Rebecca "
    "Jacob Laura Gary Sharon Nicholas Cynthia Eric Kathleen Jonathan Amy Oliver Charlotte Harry "
    "Amelia Jack Isla Noah Olivia Leo Freya Lukas Hannah Felix Lena Jonas Mia Maximilian Emma "
    "Louis Chloe Hugo Camille Lucas Manon Arjun Priya Rohan Ananya Vikram Kavya Aditya Neha "
    "Wei Mei Jun Hui Ming Xin Kenji Yuki Haruto Sakura Mateus Ana Gabriel Beatriz Rafael Julia "
    "Liam Ava Ethan Sophia Mason Isabella Logan Zoe Aiden Grace Siobhan Connor Aoife Sven Ingrid"
)
LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Evans Turner "
    "Patel Shah Sharma Gupta Singh Kumar Reddy Iyer Chen Wang Li Zhang Liu Tan Lim Ong Tanaka "
    "Sato Suzuki Watanabe Muller Schmidt Schneider Fischer Weber Meyer Wagner Becker Hoffmann "
    "Dubois Durand Lefebvre Moreau Laurent Bernard Petit Silva Santos Oliveira Souza Costa "
    "Pereira Murphy Kelly Byrne Walsh OBrien Hughes Price Bennett Wood Fox Cooper Ward Morris "
    "Brooks Gray James Reyes Cruz Ortiz Jensen Larsen Nielsen Andersson Johansson Kowalski Novak"
)
COMPANY_WORDS = _words(
    "North Blue Bright Summit Harbor Iron Silver Clear Peak Vertex Atlas Cedar Granite Nova "
    "Pioneer Beacon Crest Quantum Apex Sterling Orbit Cobalt Maple River Stone Falcon Horizon "
    "Lumen Vector Polar Meridian Union Keystone Evergreen Redwood Oak Signal Prism Anchor Ridge"
)
COMPANY_NOUNS = _words(
    "Analytics Systems Logistics Health Capital Foods Labs Works Networks Energy Robotics Media "
    "Partners Retail Bank Insurance Foundry Motors Pharma Learning Telecom Security Data Cloud"
)
COMPANY_SUFFIXES = ("Inc", "Ltd", "GmbH", "Group", "Corp", "LLC", "Co", "PLC", "AG", "SA")

TITLES_SENIOR = (
    "VP Marketing", "VP Sales", "Chief Revenue Officer", "Head of Revenue Operations",
    "Director of Marketing Operations", "Director of Sales Operations", "CTO", "CIO",
    "Head of Growth", "Director of Demand Generation", "VP Engineering", "COO",
)
TITLES_OTHER = (
    "Marketing Manager", "Sales Operations Analyst", "Software Engineer", "Data Analyst",
    "Account Manager", "Consultant", "Product Manager", "IT Manager", "Business Analyst",
    "Marketing Coordinator", "Student", "Operations Manager", "Procurement Specialist",
)

# Salesforce Industry picklist value -> HubSpot company industry enum
INDUSTRIES: dict[str, str] = {
    "Technology": "COMPUTER_SOFTWARE",
    "Finance": "FINANCIAL_SERVICES",
    "Healthcare": "HOSPITAL_HEALTH_CARE",
    "Manufacturing": "MACHINERY",
    "Retail": "RETAIL",
    "Education": "EDUCATION_MANAGEMENT",
    "Telecommunications": "TELECOMMUNICATIONS",
    "Media": "MEDIA_PRODUCTION",
    "Transportation": "LOGISTICS_AND_SUPPLY_CHAIN",
    "Government": "GOVERNMENT_ADMINISTRATION",
    "Energy": "OIL_ENERGY",
    "Consulting": "MANAGEMENT_CONSULTING",
}

FIT_COUNTRIES = ("US", "CA", "GB")
FIT_COUNTRY_WEIGHTS = (70, 10, 20)
OTHER_COUNTRIES = ("DE", "FR", "AU", "SG", "IN", "BR", "NL", "ES", "JP")
OTHER_COUNTRY_WEIGHTS = (22, 15, 12, 8, 18, 10, 6, 5, 4)
REGION_OF_COUNTRY: dict[str, str] = {
    "US": "AMER", "CA": "AMER", "BR": "AMER",
    "GB": "EMEA", "DE": "EMEA", "FR": "EMEA", "NL": "EMEA", "ES": "EMEA",
    "AU": "APAC", "SG": "APAC", "IN": "APAC", "JP": "APAC",
}
ZONES_OF_REGION: dict[str, tuple[str, ...]] = {
    "AMER": ("America/New_York", "America/Los_Angeles"),
    "EMEA": ("Europe/London", "Europe/Berlin"),
    "APAC": ("Asia/Singapore",),
}
# UTC hours when each region's people are awake and at work (for arrival times)
REGION_UTC_HOURS: dict[str, tuple[int, int]] = {"AMER": (13, 23), "EMEA": (7, 17), "APAC": (0, 9)}
FREE_MAIL = ("gmail.com", "yahoo.com")

LEAD_SOURCES: dict[str, float] = {
    "Web Form": 0.28, "Webinar": 0.18, "Event": 0.16, "List Upload": 0.15,
    "Demo Request": 0.12, "Partner Referral": 0.11,
}
FORM_SOURCES = frozenset({"Web Form", "Webinar", "Demo Request"})
# how much likelier a person from each source is to meet the reference definition
MQL_WEIGHT: dict[str, float] = {
    "Demo Request": 3.0, "Partner Referral": 1.6, "Web Form": 1.2, "Webinar": 1.0,
    "Event": 1.0, "List Upload": 0.3,
}
HS_ANALYTICS_SOURCE: dict[str, tuple[str, ...]] = {
    "Web Form": ("ORGANIC_SEARCH", "PAID_SEARCH", "DIRECT_TRAFFIC", "SOCIAL_MEDIA"),
    "Demo Request": ("PAID_SEARCH", "ORGANIC_SEARCH", "DIRECT_TRAFFIC"),
    "Webinar": ("EMAIL_MARKETING", "SOCIAL_MEDIA", "PAID_SEARCH"),
    "Event": ("OFFLINE",),
    "List Upload": ("OFFLINE",),
    "Partner Referral": ("REFERRALS",),
}

# Share of people in each CRM: Salesforce only, HubSpot only, both (the same human).
CRM_SPLIT: dict[str, float] = {"sf": 0.45, "hs": 0.22, "both": 0.33}

# Funnel targets, inside domain.md's reference ranges once time has run its course.
INQUIRY_TO_MQL = 0.18
MQL_OUTCOMES: dict[str, float] = {"accepted": 0.46, "rejected": 0.36, "pending": 0.18}
ACCEPTED_CONVERTED = 0.68
CONVERTED_WITH_OPPORTUNITY = 0.93
CLOSED_WON = 0.26

REJECTION_REASONS: dict[str, float] = {
    "No Budget": 0.25, "Not Decision Maker": 0.24, "Bad Timing": 0.2, "Competitor": 0.1,
    "Duplicate": 0.08, "Bad Data": 0.13,
}
OPEN_STAGES: tuple[tuple[str, int], ...] = (
    ("Prospecting", 10), ("Qualification", 10), ("Needs Analysis", 20),
    ("Value Proposition", 50), ("Id. Decision Makers", 60), ("Perception Analysis", 70),
    ("Proposal/Price Quote", 75), ("Negotiation/Review", 90),
)
DEAL_STAGES_OPEN = (
    "appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
    "contractsent",
)
CONTACT_ROLES = ("Decision Maker", "Economic Buyer", "Evaluator", "Technical Buyer")
PRODUCTS = ("Platform", "Analytics Add-on", "Enterprise Suite", "Team Plan", "Expansion")

# Marketing spend per campaign member, by campaign type (US dollars)
COST_PER_MEMBER: dict[str, float] = {
    "Web Form": 90, "Demo Request": 160, "Webinar": 60, "Event": 320, "List Upload": 25,
    "Partner": 200, "Email": 8,
}

# The lead definition the generated funnel is shaped around (contract.md's example). Truce's
# active definition is configured separately; with this one, its MQLs match the generator's.
REFERENCE_DEFINITION: dict[str, Any] = {"all": [
    {"field": "person.country", "op": "in", "value": list(FIT_COUNTRIES)},
    {"field": "account.employees", "op": "gte", "value": 50},
    {"not": {"field": "person.email_domain", "op": "in", "value": list(FREE_MAIL)}},
    {"any": [
        {"field": "person.score", "op": "gte", "value": 60},
        {"activity": "form_submission", "within_days": 30, "at_least": 1},
    ]},
]}
