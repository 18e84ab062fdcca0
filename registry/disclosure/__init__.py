"""公告公示: disclosure notices generated from project and fund records, their public pages, postings and complaints."""
